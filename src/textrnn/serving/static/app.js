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
    const body = { text: $("sentiment-text").value };
    if ($("sentiment-explain").checked) body.explain = true;
    const data = await callApi("POST", "/v1/sentiment", body);
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
    if (result.attributions) out.append(...explanation(result));
  } catch (error) {
    showError(out, error);
  }
}

// The words as the model read them, each shaded by its attribution towards the label (its share
// of log-odds minus baseline log-odds), with the exact score in a tooltip, and a legend.
function explanation(result) {
  const words = document.createElement("p");
  words.id = "sentiment-words";
  words.className = "words";
  const largest = Math.max(1e-9, ...result.attributions.map((a) => Math.abs(a.score)));
  result.attributions.forEach((a, i) => {
    const word = document.createElement("span");
    word.className = "word " + (a.score >= 0 ? "toward" : "against");
    word.style.setProperty("--alpha", (0.08 + 0.42 * Math.abs(a.score) / largest).toFixed(3));
    word.title = a.token + ": " + (a.score >= 0 ? "+" : "") + a.score.toFixed(3) +
      (a.score >= 0 ? " towards " : " against ") + result.label;
    word.textContent = a.token;
    words.append(i ? " " : "", word);
  });
  if (!result.attributions.length) words.textContent = "(no word the model reads)";
  const legend = document.createElement("p");
  legend.id = "sentiment-legend";
  legend.className = "muted";
  const toward = document.createElement("span");
  toward.className = "word toward";
  toward.textContent = "blue, solid";
  const against = document.createElement("span");
  against.className = "word against";
  against.textContent = "orange, dashed";
  const sign = (x) => (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(2);
  legend.append(toward, " pushed towards " + result.label + ", ", against, " against it; " +
    "the stronger the shade, the larger the push (hover a word for its score). Log-odds of " +
    result.label + ": " + sign(result.log_odds) + " = " + sign(result.baseline_log_odds) +
    " with no words + the words' scores.");
  return [words, legend];
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
    const sentiment = data.models.find((m) => m.task === "sentiment");
    if (!sentiment || !sentiment.explainable) {
      $("sentiment-explain").disabled = true;
      $("sentiment-explain").parentElement.title = "the loaded sentiment model cannot be explained";
    }
  } catch (error) {
    $("models").textContent = "Models: " + error.message;
  }
}

$("sentiment-form").addEventListener("submit", classify);
$("generate-form").addEventListener("submit", generate);
showModels();
