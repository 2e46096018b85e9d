// The drawing pad: pointer events in, live guesses out, corrections sent back.
"use strict";

(() => {
  const LINE_WIDTH = 24; // canvas pixels; bench/pendigits_data.py BRUSH mirrors it
  const LIVE_INTERVAL_MS = 500; // at most one guess per this while drawing

  const board = document.querySelector(".board");
  const canvas = document.getElementById("pad");
  const ctx = canvas.getContext("2d");
  const guess = document.getElementById("guess");
  const sees = document.getElementById("sees");
  const seesEmpty = document.getElementById("sees-empty");
  const scores = [...document.querySelectorAll(".score")].sort((a, b) => a.dataset.digit - b.dataset.digit);
  const confirmButton = document.getElementById("confirm");
  const labelButtons = [...document.querySelectorAll(".label")];
  const teachStatus = document.getElementById("teach-status");

  let drawing = false; // a pointer is down on the pad
  let last = null; // last point of the current stroke
  let hasInk = false;
  let changed = false; // ink was added since the last guess was asked for
  let ticker = null; // while the pen is down: asks for a guess every LIVE_INTERVAL_MS if changed
  let sequence = 0; // only the newest request's answer is shown
  let inFlight = 0;
  let current = null; // the guess shown now: {digit, model, sequence}
  let saved = false; // this drawing was already stored as feedback
  let strokes = []; // the pen's path, sent to the server: [[[x, y], ...], ...] in canvas pixels
  // ?send=image sends the canvas bitmap instead, to compare both inputs (bench/pendigits.py).
  const sendImage = new URLSearchParams(location.search).get("send") === "image";

  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = LINE_WIDTH;
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";

  function toCanvas(event) {
    const rect = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * canvas.width) / rect.width,
      y: ((event.clientY - rect.top) * canvas.height) / rect.height,
    };
  }

  function drawingBody() {
    return sendImage ? { image: canvas.toDataURL("image/png") } : { strokes };
  }

  function record(p) {
    // A tenth of a pixel is finer than any pointer; it keeps the request small.
    strokes[strokes.length - 1].push([Math.round(p.x * 10) / 10, Math.round(p.y * 10) / 10]);
  }

  function dot(p) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, LINE_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  function line(from, to) {
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    event.preventDefault(); // no scrolling, no text selection while drawing
    canvas.setPointerCapture(event.pointerId);
    drawing = true;
    last = toCanvas(event);
    strokes.push([]);
    record(last);
    dot(last);
    inkChanged();
    // The first live guess comes once the stroke has had time to look like something.
    clearInterval(ticker);
    ticker = setInterval(() => changed && predict(), LIVE_INTERVAL_MS);
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    // Coalesced events keep fast strokes smooth: browsers deliver one move per frame.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) {
      const p = toCanvas(e);
      line(last, p);
      record(p);
      last = p;
    }
    inkChanged();
  });

  function endStroke(event) {
    if (!drawing) return;
    drawing = false;
    last = null;
    if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
    clearInterval(ticker);
    ticker = null;
    predict(); // the guess for the finished stroke, at once
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  function inkChanged() {
    hasInk = true;
    changed = true;
    saved = false;
    setTeaching(false, "");
  }

  async function predict() {
    if (!hasInk) return;
    changed = false;
    const mine = ++sequence;
    setBusy(+1);
    try {
      const response = await fetch(board.dataset.predictUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(drawingBody()),
      });
      const body = await response.json().catch(() => ({}));
      if (mine !== sequence) return; // a newer drawing state already asked
      if (!response.ok) throw new Error(body.message || `the server answered ${response.status}`);
      show(body, mine);
    } catch (error) {
      if (mine === sequence) guess.textContent = `Could not guess: ${error.message}`;
    } finally {
      setBusy(-1);
    }
  }

  function setBusy(delta) {
    inFlight += delta;
    guess.setAttribute("aria-busy", inFlight > 0 ? "true" : "false");
  }

  function strong(text) {
    return Object.assign(document.createElement("strong"), { textContent: text });
  }

  function article(digit) {
    return digit === 8 ? "an" : "a";
  }

  function show(result, mine) {
    if (result.digit === null || result.digit === undefined) {
      reset(result.hint || "Draw a digit");
      return;
    }
    const [first, second] = result.top_two;
    current = { digit: result.digit, sure: result.sure, candidates: result.sure ? [first] : [first, second], model: result.model, sequence: mine };
    guess.innerHTML = "";
    guess.classList.toggle("unsure", !result.sure);
    if (result.sure) {
      guess.append(`It's ${article(first)} `, strong(first), ` (${percent(result.confidence)} sure)`);
    } else {
      // Below the calibrated threshold a single guess would be a coin toss dressed as an answer.
      guess.append("Not sure: ", strong(first), " or ", strong(second), "?");
    }
    result.probabilities.forEach((p, digit) => {
      const row = scores[digit];
      row.classList.toggle("top", digit === result.digit);
      row.querySelector(".fill").style.width = `${(p * 100).toFixed(1)}%`;
      row.querySelector(".score-value").textContent = percent(p);
    });
    sees.src = result.input_image;
    sees.hidden = false;
    seesEmpty.hidden = true;
    if (!drawing && !saved) {
      setTeaching(true, result.sure ? "Tip: press a digit key to correct a wrong guess." : "Which is it? Press the right digit to teach it.");
    }
  }

  function percent(p) {
    return p >= 0.995 ? "100%" : p < 0.005 ? "0%" : `${Math.round(p * 100)}%`;
  }

  function reset(message) {
    current = null;
    guess.textContent = message;
    guess.classList.remove("unsure");
    for (const row of scores) {
      row.classList.remove("top");
      row.querySelector(".fill").style.width = "0";
      row.querySelector(".score-value").textContent = "–";
    }
    sees.hidden = true;
    sees.removeAttribute("src");
    seesEmpty.hidden = false;
    setTeaching(false, "Tip: press a digit key to correct a wrong guess.");
  }

  document.getElementById("clear").addEventListener("click", () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    strokes = [];
    hasInk = false;
    saved = false;
    changed = false;
    sequence++; // answers still on their way belong to the old drawing
    reset("Draw a digit");
  });

  // -- teaching: store the right label for this drawing ------------------------------------

  function setTeaching(enabled, message) {
    // "Yes" confirms one guess; when the model named two, the person picks the digit instead.
    confirmButton.disabled = !enabled || !current || !current.sure;
    for (const button of labelButtons) {
      button.disabled = !enabled;
      button.classList.toggle("guessed", Boolean(enabled && current && current.candidates.includes(Number(button.dataset.label))));
    }
    if (message !== undefined && message !== "") teachStatus.textContent = message;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function teach(label) {
    if (!current || drawing || saved) return;
    const shown = current;
    setTeaching(false, "Saving…");
    try {
      const response = await fetch(board.dataset.feedbackUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ ...drawingBody(), label }),
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.message || `the server answered ${response.status}`);
      if (shown !== current) return;
      saved = true;
      teachStatus.textContent =
        label === shown.digit && shown.sure
          ? `Saved: ${article(label)} ${label}, guessed right. Thank you!`
          : shown.sure
            ? `Saved: ${article(label)} ${label}, not ${article(shown.digit)} ${shown.digit}. The model will learn from it at its next training.`
            : `Saved: ${article(label)} ${label}. The model will learn from it at its next training.`;
    } catch (error) {
      teachStatus.textContent = `Not saved: ${error.message}`;
      if (shown === current) setTeaching(true);
    }
  }

  confirmButton.addEventListener("click", () => current && teach(current.digit));
  for (const button of labelButtons) button.addEventListener("click", () => teach(Number(button.dataset.label)));
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || !/^[0-9]$/.test(event.key)) return;
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
    if (labelButtons[0].disabled) return;
    event.preventDefault();
    teach(Number(event.key));
  });
})();
