// The drawing pad: pointer events in, live guesses out, corrections sent back.
"use strict";

(() => {
  const LIVE_INTERVAL_MS = 500; // at most one guess per this while drawing
  const RETRY_FIRST_MS = 1000; // a failed request is tried again after 1 s, then 2, 4, ... 30 s
  const RETRY_MAX_MS = 30000;
  const OUTBOX_KEY = "digitsite.corrections"; // corrections not yet stored by the server
  // Drawings whose answer the person let stand, not yet sent (the server's recognizer.memory):
  // held until this page has a correction remembered, then sent with it, or with a guess (STOOD_BATCH).
  const STOOD_KEY = "digitsite.stood";
  const REMEMBERING_KEY = "digitsite.remembering";
  const STOOD_MOST = 100; // recognizer.fields.MAX_STOOD
  // Sent with a guess ten at a time: each sending is a write on the server, about 3 ms of CPU,
  // 0.1 ms a guess over the 30 guesses between sendings (bench/memory_cost.py); a correction takes
  // whatever is held. One, five, ten or fifteen at a time mend the same errors of the pen
  // writers (bench/memory_replay.py --stood-batch; docs/results.md).
  const STOOD_BATCH = 10;
  const NOT_A_DIGIT = 10; // recognizer.labels.NOT_A_DIGIT: the label of a drawing that is no digit

  const board = document.querySelector(".board");
  const canvas = document.getElementById("pad");
  const LINE_WIDTH = Number(canvas.dataset.brush); // canvas pixels: the server's recognizer.preprocessing.PAGE_BRUSH
  const ctx = canvas.getContext("2d");
  const guess = document.getElementById("guess");
  const announcer = document.getElementById("announce");
  const sees = document.getElementById("sees");
  const seesEmpty = document.getElementById("sees-empty");
  const scores = [...document.querySelectorAll(".score")].sort((a, b) => a.dataset.digit - b.dataset.digit);
  const confirmButton = document.getElementById("confirm");
  const labelButtons = [...document.querySelectorAll(".label")];
  const teachStatus = document.getElementById("teach-status");
  const undoButton = document.getElementById("undo");
  const notDigitButton = document.getElementById("not-digit");
  const takeBackButton = document.getElementById("take-back");
  const modelInfo = document.getElementById("model-info");
  // The server's FEEDBACK_CHANGE_MINUTES, less a little for the answer's way back.
  const CHANGE_MS = Number(board.dataset.changeSeconds) * 1000 - 5000;

  // A finger has no digit keys: the tips name what a phone has.
  const touch = window.matchMedia("(pointer: coarse)").matches;
  const TIP = touch ? "Tip: tap the right digit to correct a wrong guess." : "Tip: press a digit key to correct a wrong guess.";
  // Not sure, the page still names a top guess: "Yes" confirms it, and teaches as much as a correction.
  const WHICH = (first) =>
    touch ? `Which is it? Tap “Yes” for ${said(first)}, or the right digit.` : `Which is it? Press “Yes” for ${said(first)}, or the right digit's key.`;
  const NOT_DIGIT_ASK = touch
    ? "Tap “Not a digit” to agree, or the right digit if it is one."
    : "Press N to agree it's not a digit, or the right digit if it is one.";

  let drawing = false; // a pointer is down on the pad
  let last = null; // last point of the current stroke
  let changed = false; // ink was added since the last guess was asked for
  let ticker = null; // while the pen is down: asks for a guess every LIVE_INTERVAL_MS if changed
  let sequence = 0; // only the newest request's answer is shown
  let inFlight = 0;
  let current = null; // the guess shown now: {digit, sure, candidates, model, sequence, image}; digit 10: not a digit
  let saved = null; // the client_id this drawing was handed over with as feedback; null: not yet
  let strokes = []; // the pen's path, sent to the server: [[[x, y], ...], ...] in canvas pixels
  let kept = null; // the drawing cleared last ({strokes, saved}), which Undo brings back
  let keepStatus = false; // the next guess leaves the teaching status as it is (why a correction was refused)
  // What the teaching status says, so that a line that no longer fits the pad can go:
  // "tip", "ask" (which is it? / already saved: about the drawing on the pad), "saved", "takenback" (answer
  // again: about the drawing on the pad too), "problem", "busy".
  let statusKind = "tip";
  let lastAnswer = null; // the page's last answer: {clientId, label, digit, sure, until}, until it can no longer change
  let takeBackTimer = null;
  let footerVersion = null; // the model the footer names
  let guessRetry = null;
  let guessDelay = 0;
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

  // -- the drawings that stood: what a person's own memory on the server compares with -------

  function stored(key, fallback) {
    try {
      return JSON.parse(sessionStorage.getItem(key) || fallback);
    } catch {
      return JSON.parse(fallback);
    }
  }
  function store(key, value) {
    try {
      sessionStorage.setItem(key, JSON.stringify(value));
    } catch {
      // a private mode without storage: the drawings that stood are simply not remembered
    }
  }
  function stoodKeep() {
    // The drawing on the pad is going, answered with a digit the person did not correct.
    if (!strokes.length || saved || !current || current.digit === NOT_A_DIGIT || !current.image) return;
    store(STOOD_KEY, [...stored(STOOD_KEY, "[]"), { image: current.image, digit: current.digit }].slice(-STOOD_MOST));
  }
  function stoodToSend() {
    const held = stored(STOOD_KEY, "[]");
    return stored(REMEMBERING_KEY, "false") && held.length >= STOOD_BATCH ? held : [];
  }
  function stoodSent(sent) {
    const images = new Set(sent.map((item) => item.image));
    store(STOOD_KEY, stored(STOOD_KEY, "[]").filter((item) => !images.has(item.image)));
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

  // Undo and restore draw the kept strokes again the way the pen drew them: a dot, then lines.
  function redraw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    for (const stroke of strokes) {
      const points = stroke.map(([x, y]) => ({ x, y }));
      dot(points[0]);
      for (let i = 1; i < points.length; i++) line(points[i - 1], points[i]);
    }
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    event.preventDefault(); // no scrolling, no text selection while drawing
    canvas.setPointerCapture(event.pointerId);
    if (!strokes.length) kept = null; // a new drawing: the cleared one is gone for good
    drawing = true;
    last = toCanvas(event);
    strokes.push([]);
    record(last);
    dot(last);
    inkChanged();
    // The first live guess comes once the stroke has had time to look like something.
    clearInterval(ticker);
    ticker = setInterval(() => changed && predict(false), LIVE_INTERVAL_MS);
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
    updateUndo();
    predict(true); // the guess for the finished stroke, at once; this one is announced
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  function inkChanged() {
    changed = true;
    saved = null;
    setTeaching(false, "");
    updateUndo();
  }

  function updateUndo() {
    const hadFocus = document.activeElement === undoButton;
    undoButton.disabled = drawing || !(strokes.length || kept);
    // A disabled button drops keyboard focus to the body; the canvas keeps the person in place.
    if (hadFocus && undoButton.disabled) canvas.focus({ preventScroll: true });
  }

  // -- guessing ---------------------------------------------------------------------------

  // What went wrong, in words a person understands; `retry` when trying again may help.
  function problem(response, body) {
    if (!response) return { text: "Can't reach the server. Check your connection.", retry: true };
    // The sender's daily limit (it names itself) lasts hours: waiting and trying again would not help.
    if (response.status === 429 && body.extra && body.extra.daily_limit) return { text: body.message, retry: false };
    if (response.status === 429) return { text: "The server is busy with many drawings.", retry: true };
    // The CSRF cookie is gone (cleared, or expired): a reload gets a new one, and sends what was kept.
    if (response.status === 403) return { text: "This page has expired. Reload it to send your correction.", retry: false, reload: true };
    if (response.status === 503) return { text: body.message || "The server can't guess right now.", retry: true };
    if (response.status >= 500 || response.status === 408) return { text: "The server ran into a problem.", retry: true };
    return { text: body.message || `The server refused the drawing (error ${response.status}).`, retry: false };
  }

  async function post(url, payload, headers = {}) {
    // Resolves to {response, body}; response is null when the server could not be reached.
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...headers },
        body: JSON.stringify(payload),
      });
      return { response, body: await response.json().catch(() => ({})) };
    } catch {
      return { response: null, body: {} };
    }
  }

  async function predict(settled) {
    if (!strokes.length) return;
    clearTimeout(guessRetry);
    changed = false;
    const mine = ++sequence;
    setBusy(+1);
    const stood = stoodToSend();
    const { response, body } = await post(board.dataset.predictUrl, stood.length ? { ...drawingBody(), stood } : drawingBody());
    setBusy(-1);
    if (response && response.ok && stood.length) stoodSent(stood);
    if (mine !== sequence) return; // a newer drawing state already asked
    if (response && response.ok) {
      guessDelay = 0;
      show(body, mine, settled);
      if (outbox().length) flushOutbox(); // the server answers again: send what was kept
      return;
    }
    const { text, retry } = problem(response, body);
    current = null;
    setTeaching(false, "");
    guess.classList.add("problem");
    if (retry) {
      guessDelay = Math.min(guessDelay ? guessDelay * 2 : RETRY_FIRST_MS, RETRY_MAX_MS);
      guess.textContent = `${text} Trying again…`;
      guessRetry = setTimeout(() => mine === sequence && !drawing && predict(settled), guessDelay);
    } else {
      guess.textContent = text;
    }
    if (settled) announce(guess.textContent);
  }

  function setBusy(delta) {
    inFlight += delta;
    guess.setAttribute("aria-busy", inFlight > 0 ? "true" : "false");
  }

  function announce(text) {
    announcer.textContent = text;
  }

  function strong(text) {
    return Object.assign(document.createElement("strong"), { textContent: text });
  }

  function article(digit) {
    return Number(digit) === 8 ? "an" : "a";
  }

  function show(result, mine, settled) {
    guess.classList.remove("problem");
    if (result.model) followModel(result.model);
    const refused = result.reason === "not_a_digit"; // read, and no digit: the digits are still offered
    if ((result.digit === null || result.digit === undefined) && !refused) {
      reset(result.hint || "Draw a digit");
      if (settled) announce(guess.textContent);
      return;
    }
    const [first, second] = result.top_two || [];
    guess.innerHTML = "";
    if (refused) {
      current = { digit: NOT_A_DIGIT, sure: false, candidates: [NOT_A_DIGIT, first, second], model: result.model, sequence: mine, image: result.input_image };
      guess.classList.add("unsure");
      guess.append(result.hint || "That doesn't look like a digit.");
    } else {
      current = {
        digit: result.digit, sure: result.sure, candidates: result.sure ? [first] : [first, second], model: result.model, sequence: mine,
        image: result.input_image,
      };
      guess.classList.toggle("unsure", !result.sure);
      if (result.reason === "your_correction") {
        // Not the net's own reading: the digit this person gave a drawing like it, lately.
        guess.append(strong(first), " — like the one you corrected");
      } else if (result.reason === "your_drawing") {
        // Nor this: the digit an earlier drawing of theirs like it got, and kept.
        guess.append(strong(first), " — like one you drew before");
      } else if (result.sure) {
        guess.append(`It's ${article(first)} `, strong(first), ` (${percent(result.confidence)} sure)`);
      } else {
        // Below the calibrated threshold a single guess would be a coin toss dressed as an answer.
        guess.append("Not sure: ", strong(first), " or ", strong(second), "?");
      }
    }
    // The digits' bars; a model that also scores "not a digit" sends it after them.
    (result.probabilities || []).slice(0, 10).forEach((p, digit) => {
      const row = scores[digit];
      row.classList.toggle("top", digit === result.digit);
      row.querySelector(".fill").style.width = `${(p * 100).toFixed(1)}%`;
      row.querySelector(".score-value").textContent = percent(p);
    });
    if (result.input_image) {
      sees.src = result.input_image;
      sees.hidden = false;
      seesEmpty.hidden = true;
    }
    if (settled) announce(guess.textContent);
    if (drawing) return;
    if (saved && changeable(saved)) {
      const kept = outbox().some((item) => item.body.client_id === saved) ? "Kept (not sent yet)" : "Saved";
      setTeaching(true, `${kept} as ${said(lastAnswer.label)}. Press another answer to change it, or take it back.`, "ask");
      showTakeBack();
    } else if (saved) {
      setTeaching(false, "This drawing is already saved. Clear it to draw the next digit.", "ask");
    } else if (keepStatus) {
      setTeaching(true);
    } else if (refused) {
      setTeaching(true, NOT_DIGIT_ASK, "ask");
    } else if (!result.sure) {
      setTeaching(true, WHICH(first), "ask");
    } else {
      // The tip is for a newcomer: it never hides a confirmation or a problem.
      setTeaching(true, ...(statusKind === "tip" || statusKind === "ask" ? [TIP, "tip"] : []));
    }
    keepStatus = false;
  }

  // The footer names the model that answers: after a switch, the next guess comes from the new one.
  async function followModel(version) {
    const shown = document.getElementById("model-version");
    if (!footerVersion) footerVersion = shown ? shown.textContent.trim() : "";
    if (version === footerVersion) return;
    footerVersion = version;
    let model = null;
    try {
      const response = await fetch(board.dataset.healthUrl);
      model = (await response.json()).model;
    } catch {
      // the version alone, then
    }
    if (version !== footerVersion) return; // another switch since
    const parts = [];
    if (model && model.version === version) {
      const trained = model.trained_at ? new Date(model.trained_at) : null;
      if (trained && !isNaN(trained)) parts.push(`, trained ${trained.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" })}`);
      if (typeof model.mnist_test_accuracy === "number") {
        parts.push(`. It reads ${(model.mnist_test_accuracy * 100).toFixed(2)}% of MNIST's 10,000 test digits right`);
      }
    }
    const name = Object.assign(document.createElement("span"), { className: "version", id: "model-version", textContent: version });
    modelInfo.replaceChildren("Guessing now: model ", name, `${parts.join("")}.`);
  }

  function percent(p) {
    return p >= 0.995 ? "100%" : p < 0.005 ? "0%" : `${Math.round(p * 100)}%`;
  }

  function reset(message) {
    current = null;
    guess.textContent = message;
    guess.classList.remove("unsure", "problem");
    for (const row of scores) {
      row.classList.remove("top");
      row.querySelector(".fill").style.width = "0";
      row.querySelector(".score-value").textContent = "–";
    }
    sees.hidden = true;
    sees.removeAttribute("src");
    seesEmpty.hidden = false;
    // A question about a drawing that is gone ("Which is it?", "already saved") goes with it, and
    // so does "Taken back: ... Answer again, or clear the drawing": there is nothing left to answer.
    setTeaching(false, ...(statusKind === "ask" || statusKind === "takenback" ? [TIP, "tip"] : []));
  }

  // -- clear, undo, the next digit ----------------------------------------------------------

  function clearPad(message = "Draw a digit") {
    if (drawing) return;
    stoodKeep();
    if (strokes.length) kept = { strokes, saved };
    strokes = [];
    saved = null;
    changed = false;
    clearTimeout(guessRetry);
    sequence++; // answers still on their way belong to the old drawing
    redraw();
    reset(message);
    updateUndo();
  }

  function undo() {
    if (drawing) return;
    if (strokes.length) {
      strokes.pop();
      saved = null; // a different drawing now
      redraw();
      if (strokes.length) {
        inkChanged();
        predict(true);
      } else {
        clearTimeout(guessRetry);
        sequence++;
        reset("Draw a digit");
        updateUndo();
      }
    } else if (kept) {
      ({ strokes, saved } = kept);
      kept = null;
      redraw();
      updateUndo();
      predict(true);
    }
  }

  document.getElementById("clear").addEventListener("click", () => clearPad());
  undoButton.addEventListener("click", undo);

  // -- teaching: store the right label for this drawing ------------------------------------

  function setTeaching(enabled, message, kind) {
    // "Yes" confirms the top guess shown, sure or not ("not a digit" too): a confirmed guess the
    // model was unsure of teaches as much as a correction.
    confirmButton.disabled = !enabled || !current;
    for (const button of [...labelButtons, notDigitButton]) {
      button.disabled = !enabled;
      button.classList.toggle("guessed", Boolean(enabled && current && current.candidates.includes(Number(button.dataset.label))));
    }
    if (message !== undefined && message !== "") setStatus(message, kind);
  }

  function setStatus(message, kind = "tip") {
    teachStatus.textContent = message;
    statusKind = kind;
    // "Take back" goes with the words about the answer it takes back.
    if (kind !== "saved" && kind !== "busy" && !(kind === "ask" && saved)) takeBackButton.hidden = true;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID(); // only on https and localhost
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // The outbox keeps each correction on this device until the server has stored it, so a
  // correction made while the server is down (or the page is closed) is sent later. Each one
  // carries a client_id: sent twice, it is stored once (the server answers the first copy).
  let memoryOutbox = []; // when localStorage is unavailable (some private modes)
  function outbox() {
    try {
      return JSON.parse(localStorage.getItem(OUTBOX_KEY) || "[]");
    } catch {
      return memoryOutbox;
    }
  }
  function outboxWrite(items) {
    memoryOutbox = items;
    try {
      if (items.length) localStorage.setItem(OUTBOX_KEY, JSON.stringify(items));
      else localStorage.removeItem(OUTBOX_KEY);
    } catch {
      // memoryOutbox keeps them for this visit
    }
  }

  // "a 7", "an 8", "not a digit"
  function said(label) {
    return label === NOT_A_DIGIT ? "not a digit" : `${article(label)} ${label}`;
  }

  function savedMessage(item, saved = "Saved") {
    const { label, digit, sure } = item;
    if (label === digit && (sure || label === NOT_A_DIGIT)) {
      return label === NOT_A_DIGIT ? `${saved}: not a digit, as the model said. Thank you!` : `${saved}: ${said(label)}, guessed right. Thank you!`;
    }
    const learn = "The model will learn from it at its next training.";
    if (sure) return `${saved}: ${said(label)}, not ${said(digit)}. ${learn}`;
    return `${saved}: ${said(label)}. ${learn}`;
  }

  let flushing = false;
  let outboxRetry = null;
  let outboxDelay = 0;

  async function flushOutbox() {
    if (flushing) return;
    flushing = true;
    clearTimeout(outboxRetry);
    try {
      let item;
      while ((item = outbox()[0])) {
        const { response, body } = await post(board.dataset.feedbackUrl, item.body, { "X-CSRFToken": csrfToken() });
        if (response && response.ok) {
          outboxWrite(outbox().filter((other) => other.body.client_id !== item.body.client_id));
          outboxDelay = 0;
          const left = outbox().length;
          // One that waited on this device says so: the person may have stopped expecting it.
          const message = savedMessage(item, item.waited ? "Saved (it was kept while offline)" : "Saved");
          setStatus(message + (left ? ` (${left} more waiting to be sent.)` : ""), "saved");
          if (lastAnswer && lastAnswer.clientId === item.body.client_id) showTakeBack();
          continue;
        }
        const { text, retry, reload } = problem(response, body);
        if (reload) {
          setStatus(`Not saved yet: ${text}`, "problem");
          return; // kept in the outbox; the reloaded page sends it
        }
        if (!retry) {
          // Refused for good (a drawing too small, ...): sending it again would not help.
          outboxWrite(outbox().filter((other) => other.body.client_id !== item.body.client_id));
          setStatus(`Not saved: ${text}`, "problem");
          if (lastAnswer && lastAnswer.clientId === item.body.client_id) lastAnswer = null;
          if (!strokes.length && kept && kept.saved === item.body.client_id) {
            kept.saved = null;
            keepStatus = true; // its guess comes back too, and must not hide why it was refused
            undo(); // bring the drawing back, to correct it again
          }
          continue;
        }
        outboxDelay = Math.min(outboxDelay ? outboxDelay * 2 : RETRY_FIRST_MS, RETRY_MAX_MS);
        outboxWrite(outbox().map((other) => ({ ...other, waited: true })));
        const waiting = outbox().length;
        // Each failed retry says it again, but not over a question about the drawing on the pad.
        if (statusKind !== "ask") setStatus(
          `Not saved yet: ${text} ` +
            (waiting > 1 ? `Your ${waiting} corrections are` : "Your correction is") +
            " kept on this device and sent as soon as the server answers.",
          "problem",
        );
        outboxRetry = setTimeout(flushOutbox, outboxDelay);
        return;
      }
    } finally {
      flushing = false;
    }
  }

  function teach(label) {
    if (!current || drawing) return;
    if (saved) {
      if (changeable(saved)) changeAnswer(label);
      return;
    }
    const clientId = uuid();
    const body = { ...drawingBody(), label: label === NOT_A_DIGIT ? "not_a_digit" : label, client_id: clientId };
    if (label !== current.digit && label !== NOT_A_DIGIT) {
      // A correction the server remembers: the drawings that stood go with it, and later guesses send theirs.
      const stood = stored(STOOD_KEY, "[]").filter((item) => item.image !== current.image);
      if (stood.length) body.stood = stood;
      store(STOOD_KEY, []);
      store(REMEMBERING_KEY, true);
    }
    const item = { body, label, digit: current.digit, sure: current.sure };
    outboxWrite([...outbox(), item]);
    saved = clientId;
    lastAnswer = { clientId, label, digit: current.digit, sure: current.sure, until: Date.now() + CHANGE_MS };
    nextDigit("Saving…");
    flushOutbox();
  }

  // After an answer, a fresh canvas for the next digit; Undo brings the answered drawing back.
  function nextDigit(status, kind = "busy") {
    // The pressed button is disabled next, which would drop keyboard focus to the page's body:
    // it goes to the fresh canvas instead, where the next digit is drawn.
    if (document.activeElement && document.activeElement.closest(".teach")) canvas.focus({ preventScroll: true });
    setStatus(status, kind);
    clearPad("Draw the next digit. (Undo brings this one back.)");
  }

  // -- taking the last answer back, or changing it -----------------------------------------

  function changeable(clientId) {
    return Boolean(lastAnswer && lastAnswer.clientId === clientId && Date.now() < lastAnswer.until);
  }

  function showTakeBack() {
    if (!lastAnswer || !changeable(lastAnswer.clientId)) return;
    takeBackButton.hidden = false;
    clearTimeout(takeBackTimer);
    takeBackTimer = setTimeout(() => {
      takeBackButton.hidden = true;
      // A drawing brought back to change it can no longer be: say so, and offer no buttons.
      if (saved && strokes.length && current) setTeaching(false, "This drawing is already saved. Clear it to draw the next digit.", "ask");
    }, lastAnswer.until - Date.now());
  }

  // An answer still waiting on this device is changed there; a stored one on the server.
  async function answerRequest(method, label) {
    const id = lastAnswer.clientId;
    const waiting = outbox().find((item) => item.body.client_id === id);
    // On its way to the server right now: neither here nor there yet.
    if (waiting && flushing) return { ok: false, text: "It is being sent right now: try again in a moment." };
    if (waiting) {
      const rest = outbox().filter((item) => item.body.client_id !== id);
      if (method === "PATCH") outboxWrite([...rest, { ...waiting, label, body: { ...waiting.body, label: label === NOT_A_DIGIT ? "not_a_digit" : label } }]);
      else outboxWrite(rest);
      return { ok: true, kept: true };
    }
    try {
      const response = await fetch(`${board.dataset.feedbackUrl}${id}/`, {
        method,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: method === "PATCH" ? JSON.stringify({ label: label === NOT_A_DIGIT ? "not_a_digit" : label }) : undefined,
      });
      const body = await response.json().catch(() => ({}));
      // Already gone is what taking back wanted.
      if (response.ok || (method === "DELETE" && response.status === 404)) return { ok: true };
      return { ok: false, ...problem(response, body) };
    } catch {
      return { ok: false, ...problem(null, {}) };
    }
  }

  async function changeAnswer(label) {
    const answer = lastAnswer;
    if (label === answer.label) {
      nextDigit(`Kept: ${said(label)}.`, "saved");
      showTakeBack();
      return;
    }
    nextDigit("Changing your answer…");
    const result = await answerRequest("PATCH", label);
    if (!result.ok) {
      setStatus(`Not changed: ${result.text}`, "problem");
      return;
    }
    answer.label = label;
    setStatus(savedMessage(answer, result.kept ? "Changed (not sent yet)" : "Changed"), "saved");
    showTakeBack();
  }

  async function takeBack() {
    if (!lastAnswer || !changeable(lastAnswer.clientId)) return;
    const answer = lastAnswer;
    takeBackButton.hidden = true;
    const result = await answerRequest("DELETE");
    if (!result.ok) {
      setStatus(`Not taken back: ${result.text}`, "problem");
      return;
    }
    lastAnswer = null;
    const message = `Taken back: ${said(answer.label)} is not saved. Answer again, or clear the drawing.`;
    if (saved === answer.clientId) {
      saved = null; // the drawing on the pad may be answered afresh
      setTeaching(Boolean(current), message, "takenback");
    } else if (!strokes.length && kept && kept.saved === answer.clientId) {
      kept.saved = null;
      keepStatus = true;
      setStatus(message, "takenback");
      undo(); // the drawing comes back, to answer again
    } else {
      setStatus(`Taken back: ${said(answer.label)} is not saved.`, "takenback");
    }
  }

  confirmButton.addEventListener("click", () => current && teach(current.digit));
  for (const button of labelButtons) button.addEventListener("click", () => teach(Number(button.dataset.label)));
  notDigitButton.addEventListener("click", () => teach(NOT_A_DIGIT));
  takeBackButton.addEventListener("click", takeBack);
  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "z" && !event.shiftKey) {
      event.preventDefault();
      undo();
      return;
    }
    if (event.key === "Escape" && !event.ctrlKey && !event.metaKey && !event.altKey) {
      clearPad();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || !/^[0-9nN]$/.test(event.key)) return;
    if (labelButtons[0].disabled) return;
    event.preventDefault();
    teach(/^[nN]$/.test(event.key) ? NOT_A_DIGIT : Number(event.key));
  });

  window.addEventListener("online", () => {
    if (outbox().length) flushOutbox();
  });

  setStatus(TIP, "tip");
  const waiting = outbox().length;
  if (waiting) {
    outboxWrite(outbox().map((item) => ({ ...item, waited: true }))); // kept from an earlier visit
    setStatus(`Sending ${waiting === 1 ? "a correction" : `${waiting} corrections`} kept from before…`, "busy");
    flushOutbox();
  }
})();
