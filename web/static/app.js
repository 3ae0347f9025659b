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
