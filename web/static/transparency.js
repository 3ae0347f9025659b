// The transparency page's own check of a receipt: the receipt's hash computed here, its inclusion
// proof fetched, the Merkle root recomputed here and compared with the published one
// (the algorithm of tools/verify_tally.py).
(function () {
  "use strict";
  var form = document.getElementById("proof-check");
  if (!form) { return; }
  var out = document.getElementById("proof-result");
  var published = document.getElementById("merkle-root").dataset.root;
  var enc = new TextEncoder();
  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function bytes(h) {
    var out = new Uint8Array(h.length / 2);
    for (var i = 0; i < out.length; i++) { out[i] = parseInt(h.substr(i * 2, 2), 16); }
    return out;
  }
  function sha(parts) {
    var size = parts.reduce(function (n, p) { return n + p.length; }, 0), all = new Uint8Array(size), at = 0;
    parts.forEach(function (p) { all.set(p, at); at += p.length; });
    return crypto.subtle.digest("SHA-256", all).then(function (d) { return new Uint8Array(d); });
  }
  function normalise(code) {
    return code.trim().toUpperCase().replace(/[-\s]/g, "").replace(/O/g, "0").replace(/[IL]/g, "1");
  }
  async function check(code) {
    if (!window.crypto || !crypto.subtle) { throw new Error("此浏览器不支持本地哈希计算（需要 https）"); }
    var cleaned = normalise(code);
    if (!/^[0-9A-HJKMNP-TV-Z]{12}$/.test(cleaned)) { throw new Error("回执码格式不正确（12位字母数字）"); }
    var receipt = hex(await sha([enc.encode("jingong-receipt-v1\n" + cleaned)]));
    var answer = await fetch("/api/transparency/proof?receipt_hash=" + receipt);
    var body = await answer.json();
    if (!answer.ok) { throw new Error(body.detail_zh || "查询失败"); }
    if (body.row.split(",")[0] !== receipt) { throw new Error("服务器返回的行与您的回执不符"); }
    var node = await sha([new Uint8Array([0]), enc.encode(body.row)]);
    for (var i = 0; i < body.path.length; i++) {
      var side = body.path[i][0], partner = bytes(body.path[i][1]);
      node = side === "L" ? await sha([new Uint8Array([1]), partner, node]) : await sha([new Uint8Array([1]), node, partner]);
    }
    return {row: body.row, root: hex(node)};
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    out.className = "";
    out.textContent = "正在计算……";
    check(document.getElementById("proof-code").value).then(function (r) {
      var parts = r.row.split(",");
      var ok = r.root === published;
      out.className = ok ? "good" : "error";
      out.textContent = ok
        ? "验证通过：您的选票（候选人编号 " + parts[1] + "，" + parts[2] + "，" + (parts[3] === "valid" ? "有效" : "作废") + "）包含在公布的投票明细中，计算出的默克尔根与公布值一致。"
        : "验证失败：计算出的默克尔根 " + r.root + " 与公布值不一致！";
      out.dataset.root = r.root;
    }).catch(function (err) { out.className = "error"; out.textContent = err.message; });
  });
})();
