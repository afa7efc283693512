"""The report's inline style sheet and script (no external files, fonts or network)."""

CSS = r"""
:root { --fg:#1d1d1f; --muted:#5f6368; --line:#d9d9de; --bg:#fafafa; --dec:#c62828; --hon:#1565c0; --amb:#8d6e00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg);
       margin: 0; padding: 0 24px 48px; }
h1 { font-size: 22px; margin: 18px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 6px; }
.muted, .note { color: var(--muted); } .note { font-size: 12.5px; max-width: 70em; }
table { border-collapse: collapse; margin: 6px 0 12px; background: #fff; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; font-size: 13px; }
th { background: #f0f0f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #fff; border: 1px solid var(--line); padding: 8px; overflow-x: auto; font-size: 12px; max-height: 28em; }
nav.toc a { margin-right: 14px; }
img.plot { max-width: 100%; border: 1px solid var(--line); background: #fff; margin: 6px 0; }
.label { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px; font-weight: 600; color: #fff; }
.label.deceptive { background: var(--dec); } .label.honest { background: var(--hon); }
.label.ambiguous { background: var(--amb); }
.label.none { background: #9e9e9e; }
#toolbar { position: sticky; top: 0; z-index: 5; background: var(--bg); padding: 8px 0; border-bottom: 1px solid var(--line);
           display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
#toolbar label { font-size: 13px; } #toolbar select { font-size: 13px; }
#toolbar button { font-size: 13px; padding: 2px 10px; cursor: pointer; }
#shown { font-weight: 600; }
details.trial { content-visibility: auto; contain-intrinsic-size: auto 36px;
                background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; padding: 4px 10px; }
details.trial > summary { cursor: pointer; font-weight: 600; }
details.trial > summary .flag { color: var(--dec); font-weight: 700; margin-left: 8px; }
.facts { font-size: 12.5px; color: var(--muted); margin: 4px 0; }
.turn { margin: 6px 0; padding: 4px 8px; border-left: 3px solid var(--line); }
.turn .who { font-weight: 600; } .turn .kind { color: var(--muted); font-size: 12px; }
.turn.private { opacity: 0.75; } .turn .text { white-space: pre-wrap; }
.turn.focal { border-left-color: #6a1b9a; background: #f7f2fb; }
.turn.focal.flagged { border-left-color: var(--dec); background: #fdf0f0; }
.ann { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin-top: 6px; font-size: 12.5px; }
.ann .k { color: var(--muted); } .ann .v { white-space: pre-wrap; word-break: break-word; }
.tokens { line-height: 1.9; margin-top: 4px; white-space: pre-wrap; }
.tokens span { border-radius: 2px; }
.strip { display: flex; height: 12px; margin-top: 4px; max-width: 60em; border: 1px solid var(--line); }
.strip span { flex: 1 1 0; min-width: 1px; }
.legend { margin: 6px 0 10px; }
.legend .scalebar { width: 30em; max-width: 100%; height: 12px; border: 1px solid var(--line);
  background: linear-gradient(to right, rgba(21,101,192,.75), #fff 50%, rgba(198,40,40,.75)); }
.legend .ticks { width: 30em; max-width: 100%; display: grid; grid-template-columns: 1fr 1fr 1fr; font-size: 11.5px;
  white-space: nowrap; }
.legend .ticks span:nth-child(2) { text-align: center; } .legend .ticks span:nth-child(3) { text-align: right; }
.legend p { margin: 4px 0; }
.hidden { display: none !important; }
"""

JS = r"""
(function () {
  "use strict";
  var TOKENS = JSON.parse(document.getElementById("token-data").textContent || "{}");
  var SCALE = Number(document.body.dataset.tokenScale || "1") || 1;
  var CENTER = Number(document.body.dataset.threshold || "0") || 0;
  var trials = Array.prototype.slice.call(document.querySelectorAll("details.trial"));
  var controls = {
    scenario: document.getElementById("f-scenario"), mode: document.getElementById("f-mode"),
    condition: document.getElementById("f-condition"), label: document.getElementById("f-label"),
    probe: document.getElementById("f-probe"), rulejudge: document.getElementById("f-rulejudge")
  };

  function colour(score) {
    var x = Math.max(-1, Math.min(1, (score - CENTER) / SCALE));
    var a = Math.abs(x) * 0.75;
    return x >= 0 ? "rgba(198,40,40," + a.toFixed(3) + ")" : "rgba(21,101,192," + a.toFixed(3) + ")";
  }

  function renderTokens(root) {
    var boxes = root.querySelectorAll(".tok[data-row]:not([data-done])");
    for (var i = 0; i < boxes.length; i++) {
      var box = boxes[i], entry = TOKENS[box.dataset.row];
      box.setAttribute("data-done", "1");
      if (!entry) { continue; }
      var frag = document.createDocumentFragment();
      var holder = document.createElement("div");
      holder.className = entry.t ? "tokens" : "strip";
      for (var j = 0; j < entry.s.length; j++) {
        var span = document.createElement("span");
        span.style.background = colour(entry.s[j]);
        span.title = "token " + j + ": " + entry.s[j];
        if (entry.t) { span.textContent = entry.t[j]; }
        holder.appendChild(span);
      }
      frag.appendChild(holder);
      box.appendChild(frag);
    }
  }

  function matches(trial, f) {
    if (f.scenario && trial.dataset.scenario !== f.scenario) { return false; }
    if (f.mode && trial.dataset.mode !== f.mode) { return false; }
    if (f.condition && trial.dataset.condition !== f.condition) { return false; }
    var wanted = [];
    if (f.probe) { wanted.push(" probe "); }
    if (f.rulejudge) { wanted.push(" rulejudge "); }
    if (!f.label && !wanted.length) { return true; }
    var focal = trial.querySelectorAll(".turn.focal");
    for (var i = 0; i < focal.length; i++) {
      var d = focal[i].dataset, flags = " " + (d.flags || "") + " ";
      if (f.label && d.label !== f.label) { continue; }
      if (wanted.length && !wanted.some(function (w) { return flags.indexOf(w) >= 0; })) { continue; }
      return true;
    }
    return false;
  }

  function current() {
    return { scenario: controls.scenario.value, mode: controls.mode.value, condition: controls.condition.value,
             label: controls.label.value, probe: controls.probe.checked, rulejudge: controls.rulejudge.checked };
  }

  function apply(updateHash) {
    var f = current(), shown = 0, samples = 0;
    for (var i = 0; i < trials.length; i++) {
      var ok = matches(trials[i], f);
      trials[i].classList.toggle("hidden", !ok);
      if (ok) { shown++; samples += trials[i].querySelectorAll(".turn.focal").length; }
    }
    document.getElementById("shown").textContent =
      shown + " of " + trials.length + " trials shown (" + samples + " focal utterances)";
    document.body.dataset.shownTrials = String(shown);
    if (updateHash) {
      var parts = [];
      if (f.probe && f.rulejudge) { parts.push("filter=mislabelled"); }
      else if (f.probe) { parts.push("filter=probe"); } else if (f.rulejudge) { parts.push("filter=rulejudge"); }
      ["scenario", "mode", "condition", "label"].forEach(function (k) {
        if (f[k]) { parts.push(k + "=" + encodeURIComponent(f[k])); }
      });
      history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
    }
  }

  function fromHash() {
    var hash = location.hash.replace(/^#/, "");
    if (!hash || hash.indexOf("=") < 0) { return; }
    hash.split("&").forEach(function (part) {
      var kv = part.split("="), key = kv[0], value = decodeURIComponent(kv[1] || "");
      if (key === "filter") {
        controls.probe.checked = value === "mislabelled" || value === "probe";
        controls.rulejudge.checked = value === "mislabelled" || value === "rulejudge";
      } else if (controls[key] && controls[key].tagName === "SELECT") {
        controls[key].value = value;
      }
    });
  }

  Object.keys(controls).forEach(function (k) { controls[k].addEventListener("change", function () { apply(true); }); });
  document.getElementById("f-mislabelled").addEventListener("click", function () {
    controls.probe.checked = true; controls.rulejudge.checked = true; apply(true);
  });
  document.getElementById("f-reset").addEventListener("click", function () {
    ["scenario", "mode", "condition", "label"].forEach(function (k) { controls[k].value = ""; });
    controls.probe.checked = false; controls.rulejudge.checked = false; apply(true);
  });
  document.getElementById("f-expand").addEventListener("click", function () {
    trials.forEach(function (t) { if (!t.classList.contains("hidden")) { t.open = true; } });
  });
  document.getElementById("f-collapse").addEventListener("click", function () {
    trials.forEach(function (t) { t.open = false; });
  });
  trials.forEach(function (t) {
    t.addEventListener("toggle", function () { if (t.open) { renderTokens(t); } });
    if (t.open) { renderTokens(t); }
  });
  window.addEventListener("hashchange", function () { fromHash(); apply(false); });
  fromHash();
  apply(false);
  document.body.dataset.ready = "1";
  window.reportReadyAt = performance.now();
})();
"""
