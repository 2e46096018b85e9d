// The review queue (feedback/review.py): walks the waiting corrections with keys or buttons.
// Decisions are sent in the background and the next drawing, fetched and decoded ahead, is shown
// at once; no page reload per decision. window.reviewTimings holds the page's own work per
// decision (key press to the next drawing on screen, ms) for bench/review_queue.py.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("review-config").textContent);
  const $ = (id) => document.getElementById(id);
  const AHEAD = 12; // drawings kept fetched and decoded ahead of the reviewer
  const BATCH = 24;
  const VERBS = { approve: "Approved", reject: "Rejected", relabel: "Relabelled", skip: "Skipped" };

  const order = []; // [{id, group}] in the queue's order
  let groups = [];
  let index = 0;
  let mode = "one";
  const samples = new Map(); // id -> sample with its decoded images
  const loading = new Map(); // id -> promise of the batch that brings it
  const gone = new Set(); // ids no longer in the database
  const verdicts = new Map(); // id -> status, for samples decided as a group before they were fetched
  const history = []; // steps, for Back: {index, id, decision, was, sent}
  let confirming = null; // the group decision waiting for Yes
  let shownGroup = -1;
  window.reviewTimings = [];

  const labelText = (label) => config.labels[label] ?? String(label);
  const csrf = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]*)/) || [])[1] || "";

  async function call(url, body) {
    const options = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": decodeURIComponent(csrf()) },
      body: JSON.stringify(body),
    };
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", ...options });
    } catch {
      throw new Error("can't reach the server");
    }
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.message || `the server answered ${response.status}`);
    return answer;
  }

  // Writes go one at a time, in the order the reviewer made them: a decision, its undo and a
  // decision made again must reach the server in that order, whatever the network does.
  let writes = Promise.resolve();
  function send(task) {
    const result = writes.then(task);
    writes = result.catch(() => {});
    return result;
  }

  function picture(src, width, height, alt, className) {
    const image = new Image(width, height);
    image.alt = alt;
    image.className = className;
    image.src = src;
    return image;
  }

  function fetchAhead() {
    const wanted = order.slice(index, index + AHEAD).some(({ id }) => !samples.has(id) && !loading.has(id));
    if (!wanted) return;
    const ids = order.slice(index, index + BATCH).map(({ id }) => id).filter((id) => !samples.has(id) && !loading.has(id));
    const batch = call(`${config.samples_url}?ids=${ids.join(",")}`).then(async ({ samples: found }) => {
      const present = new Set(found.map((sample) => sample.id));
      ids.filter((id) => !present.has(id)).forEach((id) => gone.add(id)); // deleted since the queue was read
      await Promise.all(found.map(async (sample) => {
        sample.drawingImage = picture(sample.drawing, sample.drawing_width, sample.drawing_height, `drawing #${sample.id}`, "review-drawing");
        sample.inputImage = picture(sample.input, 28, 28, `28x28 input #${sample.id}`, "review-input");
        await Promise.all([sample.drawingImage.decode(), sample.inputImage.decode()]).catch(() => {});
        samples.set(sample.id, sample);
      }));
    });
    ids.forEach((id) => loading.set(id, batch));
    batch.catch((error) => say(`Could not load drawings: ${error.message}`)).finally(() => ids.forEach((id) => loading.delete(id)));
  }

  function say(text) {
    $("review-status").textContent = text;
  }

  function line(...parts) {
    const paragraph = document.createElement("p");
    paragraph.append(...parts);
    return paragraph;
  }

  function bold(text) {
    const element = document.createElement("b");
    element.textContent = text;
    return element;
  }

  // Built from elements, not HTML: nothing a sender chose is ever read as markup.
  function facts(sample) {
    const sure = `${(sample.confidence * 100).toFixed(1)}%${sample.sure ? ", sure" : ""}`;
    const status = sample.status === "needs_review" ? "needs review (held as a burst)" : sample.status.replace("_", " ");
    const source = document.createElement("span");
    source.title = sample.source;
    source.textContent = sample.source_short;
    const link = document.createElement("a");
    link.href = config.change_url.replace("{id}", sample.id);
    link.textContent = "open the sample's page";
    const pair = line("guessed ", bold(labelText(sample.guess)), ` (${sure}) → labelled `, bold(labelText(sample.label)));
    pair.className = "review-pair";
    return [pair, line(`#${sample.id} · ${status} · ${sample.created}`), line("from ", source, ` · model ${sample.model_version}`), line(link)];
  }

  function showGroup(number) {
    const group = groups[number];
    const waiting = group.ids.filter((id) => !decided(id)).length;
    $("group-title").textContent = `Group ${number + 1} of ${groups.length}: ${labelText(group.guess)} → ${labelText(group.label)}, from ${group.source_short}`;
    $("group-why").textContent = `${group.ids.length} correction${group.ids.length === 1 ? "" : "s"} (${waiting} waiting): ${group.reasons.join("; ")}.`;
    $("group-approve").textContent = `Approve group (${waiting})`;
    $("group-reject").textContent = `Reject group (${waiting})`;
    $("group-approve").disabled = $("group-reject").disabled = waiting === 0;
  }

  function decided(id) {
    const sample = samples.get(id);
    const status = sample ? sample.status : verdicts.get(id);
    return status !== undefined && status !== "new" && status !== "needs_review";
  }

  function renderGrid(number) {
    const grid = $("review-grid");
    grid.replaceChildren(...groups[number].ids.map((id) => {
      const tile = document.createElement("button");
      tile.type = "button";
      tile.className = "review-tile";
      tile.dataset.id = id;
      const sample = samples.get(id);
      if (sample) {
        tile.append(picture(sample.drawing, sample.drawing_width, sample.drawing_height, `drawing #${id}`, "review-drawing"),
          picture(sample.input, 28, 28, `28x28 input #${id}`, "review-input"));
      }
      const caption = document.createElement("span");
      caption.className = "review-tile-caption";
      tile.append(caption);
      tile.addEventListener("click", () => {
        index = order.findIndex((entry) => entry.id === id);
        show();
      });
      return tile;
    }));
  }

  function markGrid() {
    for (const tile of $("review-grid").children) {
      const id = Number(tile.dataset.id);
      const sample = samples.get(id);
      const current = order[index] !== undefined && order[index].id === id;
      tile.classList.toggle("current", current);
      tile.setAttribute("aria-current", String(current));
      if (current) tile.scrollIntoView({ block: "nearest" });
      const status = sample ? sample.status : "";
      tile.dataset.status = status;
      tile.querySelector(".review-tile-caption").textContent = sample
        ? `#${id} ${status === "approved" ? "✓ " + labelText(sample.label) : status === "rejected" ? "✗ rejected" : Math.round(sample.confidence * 100) + "%"}`
        : `#${id}`;
    }
  }

  // Show the current correction. `started` is the key press's performance.now(), to time the page's work.
  function show(started) {
    fetchAhead();
    const entry = order[index];
    const total = order.length;
    const done = order.filter(({ id }) => decided(id)).length;
    if (entry === undefined) {
      $("review-progress").textContent = total ? `Queue done: ${done} of ${total} decided` : "Nothing to review";
      $("review-one").hidden = $("review-grid").hidden = $("review-group").hidden = $("review-controls").hidden = true;
      say(total ? "Every correction in the queue was shown. Reload for new ones." : "No corrections are waiting for review.");
      timed(started);
      return;
    }
    if (gone.has(entry.id)) {
      index += 1;
      show(started);
      return;
    }
    const sample = samples.get(entry.id);
    if (sample === undefined) {
      $("review-progress").textContent = `Loading #${entry.id}…`;
      // Shown when it arrives; if its batch failed, the next key asks again.
      (loading.get(entry.id) || Promise.reject()).then(() => {
        if (order[index] === entry) show(started);
      }, () => {});
      return;
    }
    $("review-progress").textContent = `${index + 1} of ${total} · ${done} decided`;
    $("review-group").hidden = $("review-controls").hidden = false;
    $("review-one").hidden = mode !== "one";
    $("review-grid").hidden = mode !== "grid";
    if (entry.group !== shownGroup || mode === "grid") {
      if (entry.group !== shownGroup || !$("review-grid").children.length) renderGrid(entry.group);
      shownGroup = entry.group;
    }
    showGroup(entry.group);
    $("drawing-box").replaceChildren(sample.drawingImage);
    $("input-box").replaceChildren(sample.inputImage);
    $("sample-facts").replaceChildren(...facts(sample));
    if (mode === "grid") markGrid();
    timed(started);
  }

  function timed(started) {
    if (started === undefined) return;
    // A requestAnimationFrame callback runs just before the frame is painted; a task queued
    // from it runs after the paint, when the next drawing is on screen.
    requestAnimationFrame(() => setTimeout(() => window.reviewTimings.push(performance.now() - started), 0));
  }

  function decide(decision, label) {
    const started = performance.now();
    const entry = order[index];
    const sample = entry && samples.get(entry.id);
    if (!sample || confirming) return;
    if (decision === "skip") {
      history.push({ index, id: sample.id, decision });
      index += 1;
      say(`Skipped #${sample.id}.`);
      show(started);
      return;
    }
    const was = { status: sample.status, label: sample.label };
    const body = decision === "relabel" ? { id: sample.id, decision, label } : { id: sample.id, decision };
    // Shown as decided at once; the answer confirms it, or the reviewer hears what went wrong.
    sample.status = decision === "reject" ? "rejected" : "approved";
    if (decision === "relabel") sample.label = label;
    const step = { index, id: sample.id, decision, was };
    step.sent = send(() => call(config.decide_url, body)).then((answer) => {
      if (!step.undone) Object.assign(sample, { status: answer.status, label: answer.label });
      return true;
    }, (error) => {
      if (!step.undone) Object.assign(sample, was);
      say(`Not saved, #${sample.id}: ${error.message}. Back (u) to it, or try again.`);
      return false;
    });
    history.push(step);
    index += 1;
    const what = decision === "relabel" ? `Relabelled #${sample.id} as ${labelText(label)} (approved)` : `${VERBS[decision]} #${sample.id}`;
    say(`${what}. Back (u) undoes it.`);
    show(started);
  }

  function back() {
    const started = performance.now();
    const step = history.pop();
    if (step === undefined || confirming) return;
    index = step.index;
    if (step.decision === "skip") {
      say(`Back to #${step.id}.`);
      show(started);
      return;
    }
    step.undone = true;
    Object.assign(samples.get(step.id), step.was);
    say(`Undone: #${step.id} is ${step.was.status.replace("_", " ")} again.`);
    show(started);
    // Nothing to undo on the server if the decision never reached it.
    send(async () => (await step.sent) && call(config.decide_url, { id: step.id, decision: "undo", ...step.was }))
      .catch((error) => say(`Not undone, #${step.id}: ${error.message}`));
  }

  function askGroup(decision) {
    const entry = order[index];
    if (!entry) return;
    const group = groups[entry.group];
    const ids = group.ids.filter((id) => !decided(id));
    if (!ids.length) return;
    confirming = { decision, ids, group: entry.group };
    const verb = decision === "approve" ? "Approve" : "Reject";
    $("group-confirm-text").textContent =
      `${verb} all ${ids.length} waiting correction${ids.length === 1 ? "" : "s"} ${labelText(group.guess)} → ${labelText(group.label)} from ${group.source_short}?`;
    $("group-confirm-yes").textContent = `Yes, ${verb.toLowerCase()} ${ids.length}`;
    $("group-confirm").hidden = false;
    $("group-confirm-yes").focus();
  }

  function cancelGroup() {
    confirming = null;
    $("group-confirm").hidden = true;
  }

  async function confirmGroup() {
    const { decision, ids, group } = confirming;
    cancelGroup();
    try {
      const answer = await send(() => call(config.decide_url, { ids, decision }));
      ids.forEach((id) => {
        const sample = samples.get(id);
        if (sample) sample.status = answer.status;
        else verdicts.set(id, answer.status); // not fetched yet
      });
      const next = order.findIndex((entry, at) => at >= index && entry.group > group);
      index = next === -1 ? order.length : next;
      history.length = 0; // Back does not reach across a group decision
      say(`${decision === "approve" ? "Approved" : "Rejected"} ${answer.count} correction${answer.count === 1 ? "" : "s"} of group ${group + 1}.`);
      show();
    } catch (error) {
      say(`Not saved: ${error.message}`);
    }
  }

  function setMode(next) {
    mode = next;
    $("review").dataset.mode = mode;
    $("mode-one").setAttribute("aria-pressed", String(mode === "one"));
    $("mode-grid").setAttribute("aria-pressed", String(mode === "grid"));
    shownGroup = -1;
    show();
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest("input, textarea, select")) return;
    if (confirming) {
      if (event.key === "Escape") cancelGroup();
      else if (event.key === "Enter" && event.target === $("group-confirm-yes")) return; // the button's own click
      else if (event.key === "Enter") confirmGroup();
      else return;
      event.preventDefault();
      return;
    }
    const key = event.key;
    if (key === "a") decide("approve");
    else if (key === "r") decide("reject");
    else if (/^[0-9]$/.test(key)) decide("relabel", Number(key));
    else if (key === "n") decide("relabel", config.not_a_digit);
    else if (key === "u" || key === "Backspace" || key === "ArrowLeft") back();
    else if (key === "s" || key === "ArrowRight") decide("skip");
    else if (key === "g") setMode(mode === "one" ? "grid" : "one");
    else if (key === "A") askGroup("approve");
    else if (key === "R") askGroup("reject");
    else return;
    event.preventDefault();
  });

  for (const button of document.querySelectorAll("#review-controls button")) {
    button.addEventListener("click", () => {
      const decision = button.dataset.decision;
      if (decision === "back") back();
      else decide(decision, button.dataset.label === undefined ? undefined : Number(button.dataset.label));
      button.blur(); // keys go on working after a tap or a click
    });
  }
  $("group-approve").addEventListener("click", () => askGroup("approve"));
  $("group-reject").addEventListener("click", () => askGroup("reject"));
  $("group-confirm-yes").addEventListener("click", () => confirmGroup());
  $("group-confirm-no").addEventListener("click", cancelGroup);
  $("mode-one").addEventListener("click", () => setMode("one"));
  $("mode-grid").addEventListener("click", () => setMode("grid"));

  call(config.queue_url).then((queue) => {
    groups = queue.groups;
    groups.forEach((group, number) => group.ids.forEach((id) => order.push({ id, group: number })));
    show();
  }, (error) => {
    $("review-progress").textContent = "The queue could not be loaded";
    say(error.message);
  });
})();
