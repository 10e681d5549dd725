// The WeCom chat sidebar: sign the JS-SDK for this page (its address without the
// fragment), ask WeCom which customer's chat is open (getCurExternalContact) and
// load that customer's panel.  Outside WeCom there is no JS bridge and the page
// says so.
(function () {
  "use strict";
  var root = document.getElementById("sidebar");
  var base = root.getAttribute("data-base");
  var status = document.getElementById("status");
  var panel = document.getElementById("panel");

  function say(text) { status.textContent = text; }

  function loadCustomer(externalUserId) {
    fetch(base + "/customer?external_userid=" + encodeURIComponent(externalUserId), {
      credentials: "same-origin",
    }).then(function (response) {
      return response.text().then(function (html) {
        // the server escaped every value in the fragment it sent
        panel.innerHTML = html;
        say("");
        root.setAttribute("data-customer", response.ok ? externalUserId : "");
        root.setAttribute("data-state", response.ok ? "shown" : "refused");
      });
    }, function () { say("The customer could not be loaded. 客户资料加载失败。"); });
  }

  function signed(c) {
    var wx = window.wx;
    wx.config({
      beta: true, debug: false, appId: c.config.appId, timestamp: c.config.timestamp,
      nonceStr: c.config.nonceStr, signature: c.config.signature, jsApiList: c.agentConfig.jsApiList,
    });
    wx.ready(function () {
      wx.agentConfig({
        corpid: c.agentConfig.corpid, agentid: c.agentConfig.agentid, timestamp: c.agentConfig.timestamp,
        nonceStr: c.agentConfig.nonceStr, signature: c.agentConfig.signature,
        jsApiList: c.agentConfig.jsApiList,
        success: function () {
          wx.invoke("getCurExternalContact", {}, function (res) {
            if (res.err_msg === "getCurExternalContact:ok") { loadCustomer(res.userId); }
            else { say("Open this page beside a customer's chat. 请在客户聊天中打开。"); }
          });
        },
        fail: function () { say("WeCom refused the page's signature. 企业微信签名校验失败。"); },
      });
    });
    wx.error(function () { say("WeCom refused the page's signature. 企业微信签名校验失败。"); });
  }

  function start() {
    if (!window.wx) { say("Open this page in WeCom. 请在企业微信中打开。"); return; }
    var url = location.href.split("#")[0];
    fetch(base + "/config?url=" + encodeURIComponent(url), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(signed, function () { say("The page could not be signed. 页面签名失败。"); });
  }

  if (window.wx) { start(); return; }
  var script = document.createElement("script");
  script.src = root.getAttribute("data-jssdk");
  script.onload = start;
  script.onerror = start;
  document.head.appendChild(script);
})();
