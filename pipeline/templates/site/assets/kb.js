/* kb review site: play interview recordings from the second a link names.
 * A transcript page has one <audio class="kb-audio"> and segments <span class="kb-seg" data-start data-end>.
 * "#t=754" in the URL (a source link from an atom page, or a clicked timestamp) seeks the audio to
 * 754 s, scrolls to the segment spoken then and highlights it. No network, no dependencies. */
(function () {
  "use strict";

  function hashTime() {
    var m = /^#t=(\d+(?:\.\d+)?)$/.exec(window.location.hash);
    return m ? parseFloat(m[1]) : null;
  }

  function player() {
    return document.querySelector("audio.kb-audio");
  }

  function seekable(audio) {
    var s = audio.seekable;
    return s.length > 0 && s.end(s.length - 1) > 0;
  }

  // Servers without HTTP range requests (python -m http.server, mkdocs serve) make a recording
  // unseekable; a copy held in memory as a blob: URL always is. Done once, only when needed.
  var loading = null;
  function makeSeekable(audio) {
    if (!loading) {
      loading = fetch(audio.currentSrc || audio.src)
        .then(function (r) { return r.blob(); })
        .then(function (blob) {
          return new Promise(function (resolve) {
            audio.addEventListener("loadedmetadata", resolve, { once: true });
            audio.src = URL.createObjectURL(blob);
          });
        });
    }
    return loading;
  }

  function seek(audio, t, play) {
    var go = function () {
      if (!seekable(audio) && audio.duration > 0 && window.fetch && !/^(blob|file):/.test(audio.currentSrc)) {
        makeSeekable(audio).then(go);
        return;
      }
      audio.currentTime = t;
      if (play) {
        var p = audio.play();
        if (p && p.catch) p.catch(function () {});
      }
    };
    if (audio.readyState >= 1) go();
    else audio.addEventListener("loadedmetadata", go, { once: true });
  }

  function segmentAt(t) {
    var segs = document.querySelectorAll(".kb-seg[data-start]");
    var best = null;
    for (var i = 0; i < segs.length; i++) {
      if (parseFloat(segs[i].getAttribute("data-start")) <= t + 0.05) best = segs[i]; // links carry exact seconds
      else break;
    }
    return best || segs[0] || null;
  }

  var current = null;
  function highlight(t, scroll) {
    var seg = segmentAt(t);
    if (seg === current) return;
    if (current) current.classList.remove("kb-current");
    current = seg;
    if (!seg) return;
    seg.classList.add("kb-current");
    if (scroll) seg.scrollIntoView({ block: "center" });
  }

  var playNext = false;
  function fromHash() {
    var t = hashTime();
    if (t === null) return;
    var audio = player();
    if (audio) seek(audio, t, playNext);
    playNext = false;
    highlight(t, true);
  }

  // A click on a timestamp of this page is a user gesture: let it start playback too.
  document.addEventListener("click", function (ev) {
    var link = ev.target.closest ? ev.target.closest("a.kb-time") : null;
    if (!link || link.pathname !== window.location.pathname) return;
    playNext = true;
    if (link.hash === window.location.hash) fromHash(); // same hash: no hashchange event
  });
  window.addEventListener("hashchange", fromHash);

  function start() {
    var audio = player();
    if (audio) {
      audio.addEventListener("timeupdate", function () {
        highlight(audio.currentTime, false);
      });
    }
    fromHash();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
