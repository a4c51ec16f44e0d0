// The page calls the same JSON API as any client: POST /v1/sentiment and POST /v1/generate.
"use strict";

const $ = (id) => document.getElementById(id);

async function callApi(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(path, { method, headers, body: body && JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = data.error || { code: "http_" + response.status, message: response.statusText };
    throw new Error(error.message + " (" + error.code + ")");
  }
  return data;
}

function showError(element, error) {
  element.className = "error";
  element.textContent = error.message;
}

async function classify(event) {
  event.preventDefault();
  const out = $("sentiment-result");
  out.className = "muted";
  out.textContent = "…";
  try {
    const data = await callApi("POST", "/v1/sentiment", { text: $("sentiment-text").value });
    const result = data.results[0];
    const shown = data.positive_class || result.label;
    const p = result.probabilities[shown];
    out.className = "";
    out.replaceChildren();
    const line = document.createElement("p");
    const label = document.createElement("strong");
    label.id = "sentiment-label";
    label.className = "label-" + result.label;
    label.textContent = result.label;
    const prob = document.createElement("span");
    prob.id = "sentiment-probability";
    prob.textContent = p.toFixed(3);
    line.append(label, " — P(" + shown + ") = ", prob, " (model " + data.model + ")");
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = (100 * p).toFixed(1) + "%";
    bar.append(fill);
    out.append(line, bar);
  } catch (error) {
    showError(out, error);
  }
}

async function generate(event) {
  event.preventDefault();
  const out = $("generate-result");
  out.className = "muted";
  out.textContent = "…";
  const body = {
    prompt: $("prompt").value,
    strategy: $("strategy").value,
    length: Number($("length").value),
    temperature: Number($("temperature").value),
    beam_width: Number($("beam-width").value),
  };
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  try {
    const data = await callApi("POST", "/v1/generate", body);
    out.className = "";
    out.replaceChildren();
    const prompt = document.createElement("strong");
    prompt.textContent = data.prompt;
    const text = document.createElement("span");
    text.id = "generated-text";
    text.textContent = data.text;
    out.append(prompt, text);
  } catch (error) {
    showError(out, error);
  }
}

async function showModels() {
  try {
    const data = await callApi("GET", "/v1/models");
    $("models").textContent = data.models.length
      ? "Models: " + data.models.map((m) => m.task + " / " + m.name).join(", ")
      : "No model loaded.";
  } catch (error) {
    $("models").textContent = "Models: " + error.message;
  }
}

$("sentiment-form").addEventListener("submit", classify);
$("generate-form").addEventListener("submit", generate);
showModels();
