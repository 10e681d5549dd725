// The board's drag and keyboard moves (the card's own form works without this script).
// A move posts to /console/board/move with the session's CSRF token in a header;
// the card changes column only once the server has moved the customer.
"use strict";
(function () {
  const board = document.querySelector(".board");
  if (!board || board.dataset.canChange !== "yes") return;
  const csrf = document.querySelector("main").dataset.csrf;
  const status = document.getElementById("board-status");
  const columns = () => Array.from(board.querySelectorAll(".column"));

  async function move(card, column) {
    const from = card.closest(".column");
    if (!column || column === from) return;
    const body = new URLSearchParams({customer_id: card.dataset.customerId, stage_id: column.dataset.stageId});
    const response = await fetch("/console/board/move", {
      method: "POST",
      headers: {"x-csrf-token": csrf, "accept": "application/json"},
      body: body,
      credentials: "same-origin",
    });
    if (!response.ok) {
      status.textContent = (await response.text()).slice(0, 300);
      return;
    }
    column.querySelector(".cards").prepend(card);
    const select = card.querySelector("select[name=stage_id]");
    if (select) select.value = column.dataset.stageId;
    for (const [col, delta] of [[from, -1], [column, 1]]) {
      const count = col.querySelector("[data-count]");
      count.textContent = String(Number(count.textContent) + delta);
    }
    status.textContent = card.querySelector(".name").textContent + " → " + column.querySelector("h2").firstChild.textContent.trim();
    card.focus();
  }

  board.addEventListener("dragstart", (e) => {
    const card = e.target.closest(".card");
    if (!card) return;
    e.dataTransfer.setData("text/plain", card.dataset.customerId);
    e.dataTransfer.effectAllowed = "move";
  });
  board.addEventListener("dragover", (e) => {
    if (e.target.closest(".column")) e.preventDefault();
  });
  board.addEventListener("drop", (e) => {
    const column = e.target.closest(".column");
    const id = e.dataTransfer.getData("text/plain");
    const card = board.querySelector(`.card[data-customer-id="${CSS.escape(id)}"]`);
    if (column && card) {
      e.preventDefault();
      move(card, column);
    }
  });
  board.addEventListener("keydown", (e) => {
    const card = e.target.classList && e.target.classList.contains("card") ? e.target : null;
    if (!card || (e.key !== "ArrowRight" && e.key !== "ArrowLeft")) return;
    e.preventDefault();
    const all = columns();
    const here = all.indexOf(card.closest(".column"));
    move(card, all[here + (e.key === "ArrowRight" ? 1 : -1)]);
  });
})();
