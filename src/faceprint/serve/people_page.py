"""The people page of a photo library (HTML + a little JavaScript, no external assets): a people grid, a person's
faces as a review grid with multi-select actions, waiting faces in groups to name at once, photos of people and a
photo view with every face box and name drawn. Routes live in the URL hash (#/person/3, #/photo/7, ...)."""

PEOPLE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>faceprint people</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:1100px;color:#222;padding:0 1rem}
 nav a{margin-right:1rem} h1{font-size:1.4rem;margin:.6rem 0} .muted{color:#666} .err{color:#b00020;font-weight:600}
 .grid{display:flex;flex-wrap:wrap;gap:.8rem} .card{width:120px;text-align:center;font-size:.85rem;text-decoration:none;color:inherit}
 .card img{width:112px;height:112px;border-radius:50%;object-fit:cover;border:2px solid #ddd;background:#eee}
 .card .name{font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis} .unnamed .name{color:#888;font-weight:400}
 .face{position:relative;width:104px;cursor:pointer} .face img{width:100px;height:100px;border-radius:6px;border:3px solid transparent}
 .face.sel img{border-color:#1565c0} .face .how{position:absolute;left:4px;top:4px;font-size:.7rem;background:#fffc;padding:0 3px;border-radius:3px}
 .bar{position:sticky;top:0;background:#fff;padding:.5rem 0;border-bottom:1px solid #eee;display:flex;gap:.5rem;flex-wrap:wrap;align-items:center;z-index:2}
 .group{border:1px solid #ddd;border-radius:8px;padding:.4rem .6rem;margin:.4rem 0} .sugg{display:flex;gap:1rem;flex-wrap:wrap}
 .group .grid{gap:.3rem} .group .face{width:68px} .group .face img{width:64px;height:64px} .group p{margin:.3rem 0}
 .photo{position:relative;display:inline-block} .photo img{max-width:100%;display:block}
 .box{position:absolute;border:2px solid #ffeb3b;box-shadow:0 0 0 1px #000} .box span{position:absolute;left:-2px;top:100%;background:#ffeb3b;font-size:.8rem;padding:0 4px;white-space:nowrap}
 .thumbs img{height:160px;margin:.2rem;border-radius:4px}
</style></head><body>
<nav><a href="#/">People</a><a href="#/waiting" id="nav-waiting">Waiting faces</a><a href="/">Search</a>
<span id="me" class="muted"></span> <button id="logout" hidden>Log out</button></nav>
<p id="status" class="muted"></p><main id="view"></main>
<script>
const $ = (s, el = document) => el.querySelector(s);
const esc = (t) => String(t ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
const view = () => $("#view"); const say = (t, bad) => { $("#status").textContent = t; $("#status").className = bad ? "err" : "muted"; };
const csrf = () => (document.cookie.match(/(?:^|; )faceprint_csrf=([^;]*)/) || [])[1] || "";
async function api(url, body) {
  const opts = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json", "x-csrf-token": csrf()},
                                          body: JSON.stringify(body)};
  const r = await fetch(url, opts);
  if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent("/people" + location.hash); throw new Error("log in first"); }
  const out = await r.json().catch(() => ({detail: r.statusText}));
  if (!r.ok) throw new Error(typeof out.detail === "string" ? out.detail : JSON.stringify(out.detail));
  return out;
}
async function more(url, into, next, draw) {  // a "More" button under a list while the API says there is a next page
  if (!next) return;
  const b = document.createElement("button"); b.className = "more"; b.textContent = "More";
  b.onclick = async () => { const sep = url.includes("?") ? "&" : "?"; b.disabled = true;
    try { const r = await api(`${url}${sep}cursor=${encodeURIComponent(next)}`); b.remove(); draw(r); }
    catch (e) { b.disabled = false; say(e.message, true); } };  // busy (503): the button stays to try again
  into.after(b);
}
async function allPeople() {  // every page of people, for the pickers
  let out = [], r = await api("/api/people?hidden=1&limit=1000");
  out = out.concat(r.people);
  while (r.next) { r = await api(`/api/people?hidden=1&limit=1000&cursor=${encodeURIComponent(r.next)}`); out = out.concat(r.people); }
  return out;
}
function card(p) {
  const a = document.createElement("a"); a.className = "card person" + (p.name ? "" : " unnamed"); a.href = `#/person/${p.id}`;
  a.dataset.id = p.id;
  a.innerHTML = `<img alt="" src="${p.thumb || ""}"><div class="name">${esc(p.name || "Unnamed")}</div><div class="count">${plural(p.faces, "face")}</div>`;
  a.title = p.name || `Unnamed #${p.id}`;  // the whole name on hover (the card cuts long ones)
  return a;
}
function faceTile(f, selected) {
  const d = document.createElement("div"); d.className = "face" + (selected ? " sel" : ""); d.dataset.id = f.id;
  d.innerHTML = `<img alt="" src="${f.thumb}"><span class="how">${esc(f.how)}</span>`;
  d.onclick = (e) => { if (e.detail === 2) return; d.classList.toggle("sel"); };
  d.ondblclick = () => { location.hash = `#/photo/${f.photo}`; };
  return d;
}
const chosen = (root) => [...root.querySelectorAll(".face.sel")].map((d) => +d.dataset.id);
async function act(fn, okText) { try { const r = await fn(); say(okText(r)); await route(); } catch (e) { say(e.message, true); } }

async function peopleGrid(hidden) {
  const r = await api(`/api/people?hidden=${hidden ? 1 : 0}`);
  view().innerHTML = `<h1>People</h1><p class="muted">${plural(r.stats.people, "person").replace("persons", "people")} (${r.stats.named} named),
    ${plural(r.stats.photos, "photo")}, <a href="#/waiting">${plural(r.stats.waiting, "face")} waiting</a> · <label><input type="checkbox" id="show-hidden" ${hidden ? "checked" : ""}> show hidden</label></p>
    <div class="grid" id="people"></div>
    <h1>Who is in this photo?</h1><input type="file" id="who-file" accept="image/*"> <span id="who-out"></span>`;
  const drawPeople = (page) => { page.people.forEach((p) => $("#people").appendChild(card(p)));
    more(`/api/people?hidden=${hidden ? 1 : 0}`, $("#people"), page.next, drawPeople); };
  drawPeople(r);
  $("#show-hidden").onchange = (e) => peopleGrid(e.target.checked);
  $("#who-file").onchange = async (e) => {
    const form = new FormData(); form.append("file", e.target.files[0]);
    const res = await fetch("/api/who", {method: "POST", body: form, headers: {"x-csrf-token": csrf()}}); const out = await res.json();
    const near = (f) => f.closest ? `, closest: ${f.closest.name || "Unnamed #" + f.closest.id}` : "";
    $("#who-out").textContent = res.ok ? out.faces.map((f) => f.person ? `${f.name || "Unnamed #" + f.person} (${f.similarity.toFixed(2)})`
                                                         : `someone new (${f.similarity.toFixed(2)}${near(f)})`).join(", ") : out.detail;
  };
}

async function personPage(id) {
  const [p, everyone] = await Promise.all([api(`/api/people/${id}`), allPeople()]);
  if (p.id !== +id) { location.hash = `#/person/${p.id}`; return; }
  view().innerHTML = `<h1 id="person-title">${esc(p.name || "Unnamed person")} <span class="muted">#${p.id} · ${plural(p.faces, "face")}</span></h1>
    <p><input id="name" placeholder="Name" value="${esc(p.name || "")}"> <button id="save-name">Name</button>
    <button id="hide">${p.hidden ? "Show" : "Hide"}</button> <a href="#/photos/${p.id}">Photos</a>
    · <select id="with"><option value="">Photos together with…</option></select></p>
    <div class="bar"><button id="select-all">Select all</button><button id="reject">Not this person</button>
    <input id="split-name" placeholder="New person's name (optional)"><button id="split">Split into new person</button>
    <select id="move-to"><option value="">Move to…</option></select><button id="move">Move</button>
    <button id="dismiss">Not a face</button></div>
    <div class="grid" id="faces"></div><h1>Same person?</h1><div class="sugg" id="suggestions"></div>`;
  const drawFaces = (page) => { page.faces_list.forEach((f) => $("#faces").appendChild(faceTile(f)));
    more(`/api/people/${p.id}`, $("#faces"), page.next, drawFaces); };
  drawFaces(p);
  everyone.filter((q) => q.id !== p.id).forEach((q) => {
    $("#move-to").add(new Option(q.name || `Unnamed #${q.id}`, q.id)); $("#with").add(new Option(q.name || `Unnamed #${q.id}`, q.id)); });
  $("#with").onchange = (e) => { if (e.target.value) location.hash = `#/photos/${p.id},${e.target.value}`; };
  p.suggestions.forEach((q) => {
    const box = document.createElement("div"); box.className = "suggestion"; box.appendChild(card(q));
    const b = document.createElement("button"); b.textContent = `Merge (${Math.round(q.similarity * 100)}%)`; b.className = "merge";
    b.onclick = () => act(() => api(`/api/people/${p.id}/merge`, {sources: [q.id]}), (r) => `merged: ${r.moved} faces moved`);
    box.appendChild(b); $("#suggestions").appendChild(box);
  });
  if (!p.suggestions.length) $("#suggestions").textContent = "No one close.";
  const faces = () => { const f = chosen($("#faces")); if (!f.length) throw new Error("select faces first"); return f; };
  $("#save-name").onclick = () => act(() => api(`/api/people/${p.id}/name`, {name: $("#name").value}), () => "named");
  $("#hide").onclick = () => act(() => api(`/api/people/${p.id}/hide`, {hidden: !p.hidden}), (r) => r.hidden ? "hidden" : "shown");
  $("#select-all").onclick = () => $("#faces").querySelectorAll(".face").forEach((d) => d.classList.add("sel"));
  $("#reject").onclick = () => act(() => api("/api/faces/reject", {faces: faces()}), (r) => `${r.rejected} faces taken out`);
  $("#dismiss").onclick = () => act(() => api("/api/faces/dismiss", {faces: faces()}), (r) => `${r.dismissed} dismissed`);
  $("#split").onclick = () => act(() => api("/api/faces/split", {faces: faces(), name: $("#split-name").value || null}),
                                  (r) => `split into person #${r.person}`);
  $("#move").onclick = () => act(() => api("/api/faces/move", {faces: faces(), person: +$("#move-to").value}),
                                 (r) => `moved to person #${r.person}`);
}

async function waitingPage() {
  const r = await api("/api/waiting");
  view().innerHTML = `<h1>Waiting faces</h1><p class="muted">Faces no one is sure about yet, grouped by likeness. Untick the
    ones that do not belong, then name the group (an existing name adds them to that person).</p><div id="groups"></div>`;
  if (!r.groups.length) view().insertAdjacentHTML("beforeend", "<p>None: every face has a person.</p>");
  const drawGroups = (page) => { page.groups.forEach(group); more("/api/waiting", $("#groups"), page.next, drawGroups); };
  const group = (g) => {
    const box = document.createElement("div"); box.className = "group";
    box.innerHTML = `<div class="grid"></div><p><input class="group-name" placeholder="Who is this?">
      <button class="name-group">Name ${plural(g.length, "face")}</button> <button class="not-group">Not this group</button>
      <button class="not-face">Not a face</button></p>`;
    g.forEach((f) => $(".grid", box).appendChild(faceTile(f, true)));
    const picked = () => { const f = chosen(box); if (!f.length) throw new Error("tick faces first"); return f; };
    $(".name-group", box).onclick = () => act(() => api("/api/faces/split", {faces: picked(), name: $(".group-name", box).value || null}),
                                              (out) => `group is person #${out.person}`);
    $(".not-group", box).onclick = () => act(() => api("/api/faces/apart", {faces: picked()}),
                                             (out) => `${plural(out.apart, "face")} set apart: each waits alone`);
    $(".not-face", box).onclick = () => act(() => api("/api/faces/dismiss", {faces: picked()}),
                                            (out) => `${plural(out.dismissed, "face")} dismissed`);
    $("#groups").appendChild(box);
  };
  drawGroups(r);
}

async function photoPage(id) {
  const p = await api(`/api/photos/${id}`);
  view().innerHTML = `<h1>Photo #${p.id} <span class="muted">${esc(p.taken_at || "")}</span></h1><div class="photo" id="photo"><img alt="" id="photo-img"></div>`;
  const img = $("#photo-img"); img.src = p.url;
  await img.decode().catch(() => {});
  const s = img.clientWidth / p.width;
  p.faces.forEach((f) => {
    if (!f.box) return;
    const b = document.createElement("a"); b.className = "box"; b.href = f.person ? `#/person/${f.person}` : "#/waiting";
    Object.assign(b.style, {left: f.box[0] * s + "px", top: f.box[1] * s + "px", width: (f.box[2] - f.box[0]) * s + "px",
                            height: (f.box[3] - f.box[1]) * s + "px"});
    b.innerHTML = `<span>${esc(f.name || (f.person ? "Unnamed #" + f.person : "?"))}</span>`; $("#photo").appendChild(b);
  });
}

async function photosOf(ids) {
  const r = await api(`/api/photos?people=${ids}`);
  const names = r.people.map((p) => p.name || `Unnamed #${p.id}`);
  const who = names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}` : names[0];
  view().innerHTML = `<h1 id="photos-title"></h1><div class="thumbs" id="photos"></div>`;
  $("#photos-title").textContent = names.length > 1 ? `Photos of ${who} together` : `Photos of ${who}`;
  const drawPhotos = (page) => { page.photos.forEach((p) => { const a = document.createElement("a"); a.href = `#/photo/${p.id}`;
    a.innerHTML = `<img alt="" src="${p.url}">`; $("#photos").appendChild(a); });
    more(`/api/photos?people=${ids}`, $("#photos"), page.next, drawPhotos); };
  drawPhotos(r);
}

async function route() {
  const [, what, arg] = location.hash.split("/");
  try {
    if (what === "person") await personPage(arg);
    else if (what === "waiting") await waitingPage();
    else if (what === "photo") await photoPage(arg);
    else if (what === "photos") await photosOf(arg);
    else await peopleGrid(false);
  } catch (e) { say(e.message, true); }
}
window.onhashchange = () => { say(""); route(); };
fetch("/api/me").then((r) => r.json()).then((me) => {
  if (me.kind !== "session") return;
  $("#me").textContent = `${me.name} (${me.role})`; $("#logout").hidden = false;
  $("#logout").onclick = async () => { await api("/logout", {}).catch(() => {}); location.href = "/login"; };
}).catch(() => {});
route();
</script></body></html>
"""
