// Countdown to the deadline, the live shortlist counter, "select all", deeds length, and the
// few handlers that were inline (auto-submitting filter, print, back).
(function () {
  "use strict";
  function fmt(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    return "剩余 " + (d ? d + "天" : "") + h + "小时" + m + "分" + sec + "秒";
  }
  document.querySelectorAll(".countdown").forEach(function (el) {
    var left = parseInt(el.dataset.seconds, 10), start = Date.now();
    function tick() {
      var s = Math.max(0, left - Math.floor((Date.now() - start) / 1000));
      el.textContent = s > 0 ? "（" + fmt(s) + "）" : "（已截止）";
    }
    tick(); setInterval(tick, 1000);
  });
  var counter = document.getElementById("shortlist-count");
  if (counter) {
    var min = parseInt(counter.dataset.min, 10), max = parseInt(counter.dataset.max, 10);
    var hint = document.getElementById("shortlist-hint");
    var update = function () {
      var n = document.querySelectorAll(".shortlist-box:checked").length;
      counter.textContent = n;
      counter.className = n >= min && n <= max ? "good" : "bad";
      hint.textContent = n < min ? "（还差" + (min - n) + "名）" : n > max ? "（超出" + (n - max) + "名）" : "（符合要求）";
    };
    document.querySelectorAll(".shortlist-box").forEach(function (b) { b.addEventListener("change", update); });
    update();
  }
  document.querySelectorAll(".select-all").forEach(function (all) {
    all.addEventListener("change", function () {
      all.closest("form").querySelectorAll("input[name=ids]").forEach(function (b) { b.checked = all.checked; });
    });
  });
  // what used to be inline handlers: the page's Content-Security-Policy runs no inline script
  document.querySelectorAll("select.autosubmit").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
  document.querySelectorAll(".print-page").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  document.querySelectorAll("a.history-back").forEach(function (a) {
    if (window.history.length > 1) {
      a.addEventListener("click", function (e) { e.preventDefault(); window.history.back(); });
    }
  });
  document.querySelectorAll("textarea.counted").forEach(function (t) {
    var out = t.parentElement.querySelector(".count"), max = parseInt(t.dataset.max, 10);
    var update = function () { out.textContent = "已输入" + t.value.length + "字（上限" + max + "字）"; };
    t.addEventListener("input", update); update();
  });
})();
// Forms: the error summary takes the focus (a screen reader reads it; its links lead to the
// fields); a photo chosen for upload is shown before it is sent.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
  var file = document.getElementById("upload-file"), kind = document.getElementById("upload-kind");
  var preview = document.querySelector(".photo-preview");
  if (file && preview && window.FileReader) {
    var show = function () {
      var f = file.files && file.files[0];
      if (!f || !/^image\//.test(f.type) || (kind && kind.value !== "photo")) { preview.hidden = true; return; }
      var reader = new FileReader();
      reader.onload = function () { preview.querySelector("img").src = reader.result; preview.hidden = false; };
      reader.readAsDataURL(f);
    };
    file.addEventListener("change", show);
    if (kind) { kind.addEventListener("change", show); }
  }
})();
// The voter's phone: find a candidate by name, 编号 or employer on the cached list; "今日已投" on
// the buttons of candidates this browser voted for today (Beijing day, kept in localStorage:
// the cached pages stay the same bytes for everyone).
(function () {
  "use strict";
  document.querySelectorAll("input.candidate-search").forEach(function (box) {
    var list = document.getElementById(box.dataset.list), none = box.parentElement.querySelector(".search-none");
    if (!list) { return; }
    box.addEventListener("input", function () {
      var q = box.value.replace(/\s+/g, "").replace(/号$/, ""), shown = 0;
      list.querySelectorAll("li.entry").forEach(function (li) {
        var hit = !q || (/^\d+$/.test(q) ? li.dataset.number === q : li.dataset.search.indexOf(q) >= 0);
        li.hidden = !hit; if (hit) { shown += 1; }
      });
      if (none) { none.hidden = shown > 0; }
    });
  });
  var KEY = "jingong-voted";
  function today() { return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10); }
  function load() {
    try {
      var v = JSON.parse(window.localStorage.getItem(KEY) || "{}");
      return v.day === today() && Array.isArray(v.ids) ? v : { day: today(), ids: [] };
    } catch (e) { return { day: today(), ids: [] }; }
  }
  var state = load();
  document.querySelectorAll("[data-voted]").forEach(function (el) {
    var id = el.dataset.voted;
    if (id && state.ids.indexOf(id) < 0) { state.ids.push(id); }
    try { window.localStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { /* private mode */ }
    var item = el.closest("li, article");
    if (item && item.scrollIntoView) { item.scrollIntoView({ block: "center" }); }
  });
  document.querySelectorAll("form.vote-form").forEach(function (f) {
    if (state.ids.indexOf(f.dataset.id) >= 0) {
      var b = f.querySelector("button");
      b.textContent = "今日已投 ✓"; b.disabled = true; b.classList.add("done");
      b.setAttribute("aria-label", b.getAttribute("aria-label").replace("投票", "今日已投票"));
    }
  });
})();
