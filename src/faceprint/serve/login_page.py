"""The login page and the API docs page (HTML + a little JavaScript, no external assets: the CSP allows only these
inline scripts, by hash)."""

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>faceprint: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;margin:4rem auto;max-width:360px;color:#222;padding:0 1rem}
 label{display:block;margin:.8rem 0} input{width:100%;padding:.4rem;box-sizing:border-box} .err{color:#b00020;font-weight:600}
 button{padding:.5rem 1.2rem}
</style></head><body>
<h1>faceprint</h1>
<form id="login"><label>Name <input id="name" autocomplete="username" required></label>
<label>Password <input id="password" type="password" autocomplete="current-password" required></label>
<button id="go">Log in</button> <span id="status"></span></form>
<script>
const $ = (id) => document.getElementById(id);
$("login").onsubmit = async (e) => {
  e.preventDefault(); $("status").textContent = ""; $("status").className = "";
  const r = await fetch("/login", {method: "POST", headers: {"Content-Type": "application/json"},
                                   body: JSON.stringify({name: $("name").value, password: $("password").value})});
  if (r.ok) {
    const next = new URL(new URLSearchParams(location.search).get("next") || "/", location.origin);
    location.href = next.origin === location.origin ? next.href : "/";  // our pages only (the whole URL, as parsed)
  } else {
    const out = await r.json().catch(() => ({detail: r.statusText}));
    $("status").textContent = out.detail; $("status").className = "err";
  }
};
</script></body></html>
"""

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>faceprint API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#222;padding:0 1rem}
 .op{border-bottom:1px solid #eee;padding:.6rem 0} .m{display:inline-block;width:4rem;font-weight:700} code{background:#f3f3f3}
 .p{color:#555;font-size:.9rem;margin-left:4rem}
</style></head><body>
<h1>faceprint API</h1><p>Send an API key as <code>Authorization: Bearer &lt;key&gt;</code> or <code>x-api-key</code>
(<code>faceprint keys create LIB --role viewer|editor|admin</code>). The machine-readable description is
<a href="/openapi.json">/openapi.json</a>.</p><div id="ops"></div>
<script>
const esc = (t) => String(t ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
fetch("/openapi.json").then((r) => r.json()).then((spec) => {
  const out = [];
  for (const [path, ops] of Object.entries(spec.paths || {})) {
    for (const [method, op] of Object.entries(ops)) {
      const params = (op.parameters || []).map((p) => `${esc(p.name)} (${esc(p.in)})`);
      const body = op.requestBody ? Object.keys(op.requestBody.content || {}).join(", ") : "";
      out.push(`<div class="op"><span class="m">${esc(method.toUpperCase())}</span><code>${esc(path)}</code> ${esc(op.summary || "")}
        <div class="p">${esc(op.description || "")}</div>
        <div class="p">${params.length ? "parameters: " + params.join(", ") : ""} ${body ? "body: " + esc(body) : ""}</div></div>`);
    }
  }
  document.getElementById("ops").innerHTML = out.join("");
});
</script></body></html>
"""
