// claimflow serve: the little script the pages need (no framework, no build step).
// - the verify form streams its run (POST /v1/verify:stream, server-sent events read through fetch,
//   as EventSource cannot POST), lights up each node as it finishes, then shows the result the server
//   renders (POST /ui/result);
// - a run page's replay buttons fork the run (POST /v1/runs/{id}/replay) and open the new run;
// - report frames grow to their content's height.
"use strict";

(function () {
  const root = document.body.dataset.root || "";
  const $ = (selector, scope) => (scope || document).querySelector(selector);
  const $all = (selector, scope) => Array.from((scope || document).querySelectorAll(selector));

  function showError(box, message) {
    box.textContent = message;
    box.hidden = false;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return (body.error ? body.error + ": " : "") + (body.message || response.statusText);
    } catch (_) {
      return response.status + " " + response.statusText;
    }
  }

  async function postJSON(path, body, accept) {
    return fetch(root + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: accept || "application/json" },
      body: JSON.stringify(body),
    });
  }

  // Server-sent events from a fetch response: yields {event, data} with data parsed as JSON.
  async function* serverEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
      }
    }
  }

  function lines(text) {
    return text.split("\n").map((s) => s.trim()).filter(Boolean);
  }

  // --- the verify form ---------------------------------------------------------------------------

  function verifyForm(form) {
    const error = $("#error");
    const live = $("#live");
    const progress = $("#progress");
    const result = $("#result");
    const button = $("#verify-button");
    const allStages = (form.dataset.stages || "").split(",").filter(Boolean);

    $("#load-example").addEventListener("click", (event) => {
      const example = JSON.parse(event.currentTarget.dataset.example);
      form.elements.claim.value = example.claim;
      form.elements.evidence.value = example.evidence.join("\n");
      form.elements.claim.focus();
    });

    function resetGraph() {
      $all("#live-graph .node, #live-graph .edge").forEach((el) => el.classList.remove("taken"));
    }

    function markNode(node) {
      const box = $("#live-graph #g-node-" + CSS.escape(node));
      if (box) box.classList.add("taken");
    }

    function waiting(text) {
      const li = document.createElement("li");
      li.className = "waiting";
      li.textContent = text;
      progress.append(li);
      return li;
    }

    async function showResult(data) {
      const response = await postJSON("/ui/result", data, "text/html");
      if (!response.ok) {
        showError(error, await errorText(response));
        return;
      }
      result.innerHTML = await response.text(); // rendered and escaped by the server
      result.dataset.status = data.status;
      live.hidden = true;
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      result.replaceChildren();
      delete result.dataset.status;
      progress.replaceChildren();
      resetGraph();
      $("#run-id").textContent = "";
      const stages = $all("input[name=stages]:checked", form).map((input) => input.value);
      const body = {
        claim: form.elements.claim.value,
        evidence: lines(form.elements.evidence.value),
        force: form.elements.force.checked,
        gate: form.elements.gate.value,
        stages: stages.length === allStages.length ? null : stages,
      };
      button.disabled = true;
      form.setAttribute("aria-busy", "true");
      live.hidden = false;
      markNode("__start__");
      let pending = waiting("loading and running the first node…");
      try {
        const response = await postJSON("/v1/verify:stream", body, "text/event-stream");
        if (!response.ok) {
          live.hidden = true;
          showError(error, await errorText(response));
          return;
        }
        for await (const { event, data } of serverEvents(response)) {
          if (event === "start") {
            if (data.run_id) $("#run-id").textContent = "run " + data.run_id;
          } else if (event === "node") {
            pending.remove();
            const li = document.createElement("li");
            li.dataset.node = data.node;
            const name = document.createElement("span");
            name.className = "node";
            name.textContent = data.node;
            const secs = document.createElement("span");
            secs.className = "secs";
            secs.textContent = " " + data.seconds.toFixed(2) + " s";
            const summary = document.createElement("div");
            summary.className = "summary";
            summary.textContent = data.summary;
            li.append(name, secs, summary);
            progress.append(li);
            markNode(data.node);
            pending = waiting("running the next node…");
          } else if (event === "result") {
            pending.remove();
            await showResult(data);
          } else if (event === "error") {
            pending.remove();
            showError(error, data.error + ": " + data.message);
          }
        }
      } catch (failure) {
        showError(error, "the request failed: " + failure);
      } finally {
        pending.remove();
        button.disabled = false;
        form.removeAttribute("aria-busy");
      }
    });
  }

  // --- replay ------------------------------------------------------------------------------------

  function replayPanel(panel) {
    const error = $(".error-box", panel);
    const status = $(".status", panel);
    $all("button[data-from]", panel).forEach((button) => {
      button.addEventListener("click", async () => {
        error.hidden = true;
        const prompts = {};
        for (const line of lines($("[name=prompts]", panel).value)) {
          const at = line.indexOf("=");
          if (at < 1) {
            showError(error, "prompt " + JSON.stringify(line) + ": write KEY=ID@V, e.g. veracity=veracity_justifications_rawfc@1");
            return;
          }
          prompts[line.slice(0, at).trim()] = line.slice(at + 1).trim();
        }
        const body = {
          from_node: button.dataset.from || null,
          edits: lines($("[name=edits]", panel).value),
          prompts: prompts,
        };
        $all("button", panel).forEach((b) => (b.disabled = true));
        status.textContent = "replaying…";
        try {
          const response = await postJSON("/v1/runs/" + encodeURIComponent(panel.dataset.run) + "/replay", body);
          if (!response.ok) {
            showError(error, await errorText(response));
            status.textContent = "";
            return;
          }
          const outcome = await response.json();
          status.textContent = "new run " + outcome.run_id + ": opening it…";
          window.location.assign(root + "/runs/" + encodeURIComponent(outcome.run_id));
        } catch (failure) {
          showError(error, "the request failed: " + failure);
        } finally {
          $all("button", panel).forEach((b) => (b.disabled = false));
        }
      });
    });
  }

  // --- report frames -----------------------------------------------------------------------------

  function fitFrame(frame) {
    const fit = () => {
      try {
        const doc = frame.contentDocument;
        if (doc && doc.documentElement) frame.style.height = doc.documentElement.scrollHeight + 24 + "px";
      } catch (_) {
        /* another origin: keep the default height */
      }
    };
    frame.addEventListener("load", () => {
      fit();
      frame.dataset.loaded = "true";
    });
    fit();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = $("#verify-form");
    if (form) verifyForm(form);
    const panel = $("#replay");
    if (panel) replayPanel(panel);
    $all("iframe.report").forEach(fitFrame);
  });
})();
