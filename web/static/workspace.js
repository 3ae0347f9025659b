// The committee's workspace: clean filter URLs, bulk acts row by row without leaving the page,
// and a confirmation before an act that ends a candidacy.
(function () {
  "use strict";
  document.querySelectorAll("form.filters").forEach(function (form) {
    form.addEventListener("submit", function () {
      // empty fields stay out of the URL, so a shared link says only what was chosen
      form.querySelectorAll("input, select").forEach(function (f) { if (f.name && !f.value) { f.disabled = true; } });
      setTimeout(function () { form.querySelectorAll("[disabled]").forEach(function (f) { f.disabled = false; }); }, 0);
    });
  });

  document.querySelectorAll("button[data-confirm]").forEach(function (b) {
    b.addEventListener("click", function (e) {
      if (!window.confirm(b.dataset.confirm)) { e.preventDefault(); }
    });
  });

  // a list saved as a whole (the shortlist) is searched in the page: hidden rows keep their ticks
  var filter = document.getElementById("row-filter");
  if (filter) {
    var rows = document.querySelectorAll("#" + filter.dataset.table + " tbody tr");
    var shown = document.getElementById("row-filter-count");
    filter.addEventListener("input", function () {
      var words = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean), n = 0;
      rows.forEach(function (tr) {
        var text = tr.textContent.toLowerCase();
        var hit = words.every(function (w) { return text.indexOf(w) >= 0; });
        tr.hidden = !hit;
        if (hit) { n += 1; }
      });
      shown.textContent = words.length ? "显示" + n + " / " + rows.length + "项（隐藏的行保留勾选）" : "";
    });
  }

  var form = document.querySelector("form[data-bulk]");
  if (!form) { return; }
  var result = document.getElementById("bulk-result");
  var picked = document.getElementById("bulk-picked");
  var jump = document.getElementById("to-bulk");  // on a phone the act is below fifty cards
  function count() {
    var n = form.querySelectorAll("input[name=ids]:checked").length;
    picked.textContent = n ? "已选" + n + "项" : "";
    if (jump) {
      jump.hidden = !n;
      jump.textContent = "已选" + n + "项 · 批量操作 ↓";
    }
    return n;
  }
  form.addEventListener("change", count);
  count();
  function say(text, kind) {
    result.textContent = text;
    result.className = kind || "";
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!count()) { say("请先勾选要处理的申报", "error"); return; }
    var button = form.querySelector("fieldset.bulk button");
    button.disabled = true;
    say("正在处理……", "muted");
    fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                        headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().catch(function () { return {detail_zh: "操作未能完成（" + response.status + "）"}; })
          .then(function (body) { return {ok: response.ok, body: body}; });
      })
      .then(function (answer) {
        if (!answer.ok) { say("未执行：" + (answer.body.detail_zh || "操作未能完成"), "error"); return; }
        answer.body.rows.forEach(function (row) {
          var tr = form.querySelector("tr[data-id='" + row.id + "']");
          if (!tr) { return; }
          var note = tr.querySelector(".row-note"), box = tr.querySelector("input[name=ids]");
          if (row.state_zh) { tr.querySelector(".state-label").textContent = row.state_zh; }
          tr.classList.remove("refused", "done");
          if (row.refused_zh) {
            note.textContent = "未执行：" + row.refused_zh;
            tr.classList.add("refused");
          } else {
            note.textContent = row.changed ? "已更新" : "状态未变";
            tr.classList.add("done");
            if (box) { box.checked = false; }  // done; the refused ones stay ticked
          }
        });
        say(answer.body.summary, answer.body.refused ? "error" : "notice");
        var first = form.querySelector("tr.refused");
        if (first) { first.scrollIntoView({block: "center"}); }
        count();
      })
      .catch(function () { say("网络错误，未能提交；勾选已保留，请重试", "error"); })
      .then(function () { button.disabled = false; });
  });
})();
