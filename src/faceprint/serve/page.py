"""The single search page (HTML + a little JavaScript, no external assets)."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>faceprint search</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#222;padding:0 1rem}
 h1{font-size:1.5rem;margin-bottom:.2rem} .sub{color:#666;margin-top:0}
 #drop{border:2px dashed #88a;border-radius:10px;padding:2rem;text-align:center;background:#f6f7fb;cursor:pointer}
 #drop.over{background:#e6ebff} .err{color:#b00020;font-weight:600}
 .face{display:flex;gap:1rem;align-items:flex-start;border-bottom:1px solid #eee;padding:1rem 0}
 .query canvas{border-radius:6px;border:1px solid #ccc} .matches{display:flex;gap:.8rem;flex-wrap:wrap}
 .match{width:112px;text-align:center;font-size:.8rem} .match img{width:96px;height:96px;border-radius:6px;border:3px solid #ccc}
 .same img{border-color:#2e7d32} .diff img{border-color:#c62828} .verdict{font-weight:600}
 fieldset{border:1px solid #ddd;border-radius:8px;margin-top:1.5rem} label{margin-right:1rem}
</style></head><body>
<h1>faceprint</h1><p class="sub">Drop a photo: every face in it is searched in the index.
 <a href="/people" id="people-link" hidden>People in this library →</a>
 <span id="me"></span> <button id="logout" hidden>Log out</button></p>
<div id="drop">Drop a photo here or click to choose one<input id="file" type="file" accept="image/*" hidden></div>
<p id="status"></p><div id="results"></div>
<fieldset><legend>Enroll a face</legend>
 <label>Name <input id="enroll-name" required></label><input id="enroll-file" type="file" accept="image/*">
 <button id="enroll-go">Enroll</button> <span id="enroll-status"></span></fieldset>
<fieldset><legend>Verify two photos</legend>
 <input id="verify-a" type="file" accept="image/*"><input id="verify-b" type="file" accept="image/*">
 <button id="verify-go">Verify</button> <span id="verify-status"></span></fieldset>
<script>
const $ = (id) => document.getElementById(id);
const csrf = () => (document.cookie.match(/(?:^|; )faceprint_csrf=([^;]*)/) || [])[1] || "";
async function post(url, form) {
  const r = await fetch(url, {method: "POST", body: form, headers: {"x-csrf-token": csrf()}});
  if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); throw new Error("log in first"); }
  const body = await r.json().catch(() => ({detail: r.statusText}));
  if (!r.ok) throw new Error(typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
  return body;
}
function faceCanvas(img, box) {
  const c = document.createElement("canvas"); c.width = 112; c.height = 112;
  const [x1, y1, x2, y2] = box || [0, 0, img.naturalWidth, img.naturalHeight];
  c.getContext("2d").drawImage(img, x1, y1, x2 - x1, y2 - y1, 0, 0, 112, 112); return c;
}
async function search(file) {
  $("status").textContent = "searching…"; $("status").className = ""; $("results").innerHTML = "";
  const form = new FormData(); form.append("file", file); form.append("k", "5");
  const img = new Image(); img.src = URL.createObjectURL(file); await img.decode().catch(() => {});
  try {
    const res = await post("/search", form);
    const n = res.faces.length;
    $("status").textContent = `${n} ${n === 1 ? "face" : "faces"}; same person below distance ${res.threshold.toFixed(2)}` +
      (res.faces_skipped ? ` (${res.faces_skipped} smaller faces not searched)` : "");
    res.faces.forEach((f, i) => {
      const row = document.createElement("div"); row.className = "face";
      const q = document.createElement("div"); q.className = "query"; q.appendChild(faceCanvas(img, f.box));
      q.appendChild(document.createElement("div")).textContent = `face ${i + 1}`;
      if (f.who) {  // a library's answer: its people rule, the same as "who is in this photo"
        const who = q.appendChild(document.createElement(f.who.person ? "a" : "div")); who.className = "who";
        if (f.who.person) who.href = `/people#/person/${f.who.person}`;
        const near = f.who.closest ? `; closest: ${f.who.closest.name || "Unnamed #" + f.who.closest.id}` : "";
        who.textContent = f.who.person ? `${f.who.name || "Unnamed #" + f.who.person} (${f.who.similarity.toFixed(2)})`
                                       : `someone new (${f.who.similarity.toFixed(2)}${near})`;
      }
      const m = document.createElement("div"); m.className = "matches";
      f.matches.forEach((hit) => {
        const d = document.createElement("div"); d.className = "match " + (hit.same ? "same" : "diff");
        d.innerHTML = `<img alt="">
          <div class="name"></div><div>d = ${hit.distance.toFixed(3)}</div>
          <div class="verdict">${hit.same ? "same" : "different"}</div>`;
        d.querySelector("img").src = hit.thumb; d.querySelector(".name").textContent = hit.identity || "(no name)";
        d.title = hit.identity || "";
        if (hit.person) { const a = document.createElement("a"); a.href = `/people#/person/${hit.person}`; a.className = "person-link";
                          a.textContent = "person →"; d.appendChild(a); }
        m.appendChild(d);
      });
      row.appendChild(q); row.appendChild(m); $("results").appendChild(row);
    });
  } catch (e) { $("status").textContent = e.message; $("status").className = "err"; }
}
const library = document.body.dataset.library === "1";  // set by the server for a photo library: no probing
if (library) $("people-link").hidden = false;
fetch("/api/me").then((r) => r.json()).then((me) => {
  if (me.kind !== "session") return;
  $("me").textContent = `${me.name} (${me.role})`; $("logout").hidden = false;
  $("logout").onclick = async () => { await post("/logout", new FormData()).catch(() => {}); location.href = "/login"; };
}).catch(() => {});
$("drop").onclick = () => $("file").click();
$("file").onchange = (e) => e.target.files[0] && search(e.target.files[0]);
$("drop").ondragover = (e) => { e.preventDefault(); $("drop").classList.add("over"); };
$("drop").ondragleave = () => $("drop").classList.remove("over");
$("drop").ondrop = (e) => { e.preventDefault(); $("drop").classList.remove("over");
  if (e.dataTransfer.files[0]) search(e.dataTransfer.files[0]); };
$("enroll-go").onclick = async () => {
  const form = new FormData(); form.append("name", $("enroll-name").value); form.append("file", $("enroll-file").files[0]);
  try { const r = await post("/enroll", form); $("enroll-status").textContent = `enrolled ${r.identity} (face #${r.id})`; }
  catch (e) { $("enroll-status").textContent = e.message; }
};
$("verify-go").onclick = async () => {
  const form = new FormData(); form.append("file_a", $("verify-a").files[0]); form.append("file_b", $("verify-b").files[0]);
  try { const r = await post("/verify", form);
        $("verify-status").textContent = `${r.same ? "same person" : "different people"} (distance ${r.distance.toFixed(3)})`; }
  catch (e) { $("verify-status").textContent = e.message; }
};
</script></body></html>
"""
