/** The dashboard's only stylesheet and script, served from memory. */

export const CSS = `
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#fff;--soft:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--run:#0969da}
*{box-sizing:border-box}
body{font:15px/1.5 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg);margin:0}
header{display:flex;gap:1rem;align-items:center;padding:.6rem 1rem;border-bottom:1px solid var(--line);flex-wrap:wrap}
header .brand{font-weight:700;color:var(--fg);text-decoration:none}
header nav a{margin-right:.8rem}
header .who{margin-left:auto;color:var(--muted)}
main{max-width:1100px;margin:0 auto;padding:1rem}
footer{color:var(--muted);font-size:12px;text-align:center;padding:1rem}
a{color:var(--run)}
h1{font-size:1.5rem;margin:.4rem 0} h2{font-size:1.2rem;margin-top:1.6rem} h3{font-size:1rem;margin-top:1.2rem}
.muted{color:var(--muted)} .error{color:var(--bad)}
pre{background:var(--soft);padding:.6rem;border-radius:6px;overflow-x:auto;font-size:13px;white-space:pre-wrap;word-break:break-word}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:14px;display:block;overflow-x:auto}
th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;white-space:nowrap}
td.url{white-space:normal;word-break:break-all}
.badge,.state{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:12px;border:1px solid var(--line)}
.connected,.done,.answered,.sent{color:var(--ok);border-color:var(--ok)}
.failed,.stopped,.interrupted,.rejected{color:var(--bad);border-color:var(--bad)}
.retrying,.starting,.queued,.pending{color:var(--warn);border-color:var(--warn)}
.running{color:var(--run);border-color:var(--run)}
tr.blocked td{color:var(--bad)}
section.repo{border-top:1px solid var(--line);margin-top:1rem}
form.new-task,form.reply{display:grid;gap:.4rem;margin:.8rem 0;max-width:760px}
textarea,input{font:inherit;padding:.4rem;border:1px solid var(--line);border-radius:6px;width:100%}
.row{display:flex;gap:.6rem;align-items:center;justify-content:space-between}
.row input{width:auto}
button{font:inherit;padding:.35rem .9rem;border-radius:6px;border:1px solid var(--line);background:var(--soft);cursor:pointer}
button.danger{color:#fff;background:var(--bad);border-color:var(--bad)}
button.link{border:none;background:none;color:var(--run);padding:0}
form.inline{display:inline}
.msg{border:1px solid var(--line);border-radius:8px;padding:.2rem .8rem;margin:.6rem 0}
.msg.agent{background:var(--soft)}
.msg header{border:none;padding:.3rem 0;display:block}
.timeline .ev{display:flex;gap:.6rem;padding:.15rem 0;border-bottom:1px dashed #eee}
.timeline .ev time{color:var(--muted);font-size:12px;min-width:4.5rem;padding-top:.15rem}
.timeline .ev>*:not(time){flex:1;min-width:0}
details.tool summary,details.tool-result summary{cursor:pointer}
details.tool-result.error summary{color:var(--bad)}
.timeline .text p{margin:.15rem 0}
form.reply button,form.new-task button{justify-self:start}
ul.plan{list-style:none;padding-left:.2rem} ul.plan li.completed{color:var(--muted);text-decoration:line-through}
ul.plan li.in_progress{font-weight:600}
body.login main{max-width:360px;margin-top:10vh}
body.login form{display:grid;gap:.6rem}
@media (max-width:600px){main{padding:.6rem} th,td{padding:.25rem}}
`;

export const JS = `
(function(){
  document.addEventListener('submit', function(e){
    var f = e.target; var q = f.getAttribute && f.getAttribute('data-confirm');
    if (q && !window.confirm(q)) e.preventDefault();
  });
  var body = document.body, topic = body.getAttribute('data-live');
  if (!topic) return;
  var main = document.getElementById('main');
  var pending = null;
  function refresh(){
    if (pending) return;
    pending = setTimeout(function(){
      fetch(location.href, {headers: {'x-fragment': '1'}}).then(function(r){ return r.ok ? r.text() : null; })
        .then(function(t){ pending = null; if (t !== null && !document.activeElement.matches('textarea,input')) main.innerHTML = t; })
        .catch(function(){ pending = null; });
    }, 400);
  }
  if (!window.EventSource) { setInterval(refresh, 3000); return; }
  var taskPage = topic.indexOf('task:') === 0;
  var es = new EventSource('/live?topic=' + encodeURIComponent(topic) + '&after=' + (body.getAttribute('data-after') || '0'));
  // The page's own parts are found as children of <main>: an element nested in agent
  // content cannot stand in for them, whatever its id.
  function part(id){ return main.querySelector(':scope > #' + id); }
  // Server-rendered markup, parsed inert; ids inside it are dropped so none can collide
  // with the page's (the server's templates put none there; this holds even if one did).
  function parse(markup){
    var t = document.createElement('template'); t.innerHTML = markup;
    t.content.querySelectorAll('[id]').forEach(function(el){ el.removeAttribute('id'); });
    return t.content;
  }
  if (!taskPage) {
    es.addEventListener('changed', refresh);
    // Changes made while the stream was (re)connecting are caught up by one refresh; a
    // task page resumes from its last event id instead.
    es.addEventListener('open', refresh);
    return;
  }
  es.addEventListener('ev', function(m){
    var tl = part('timeline'), seq = m.lastEventId;
    // One event is one element, under the id the stream gave it (our seq, digits only).
    if (!tl || !/^[0-9]+$/.test(seq) || tl.querySelector(':scope > [data-seq="' + seq + '"]')) return;
    var f = parse(m.data), el = f.firstElementChild;
    if (f.childNodes.length !== 1 || !el || !el.matches('div.ev') || el.getAttribute('data-seq') !== seq) return;
    el.id = 'ev-' + seq;
    tl.appendChild(el);
  });
  es.addEventListener('plan', function(m){ var p = part('plan'); if (p) p.replaceChildren(parse(m.data)); });
  es.addEventListener('state', function(){ es.close(); location.reload(); });
})();
`;
