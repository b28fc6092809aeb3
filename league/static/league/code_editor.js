// The Python code editor (league/templates/league/includes/code_editor.html): CodeMirror 5 over a textarea, the
// examples one click away, and Validate, which shows the error on its line (gutter marker, line colour and the
// message right under the line) or "valid" with each synthetic car's reward.
(() => {
  "use strict";
  if (!window.CodeMirror) return;  // the vendored script did not load: the plain textarea still works

  function csrfToken(form) {
    const input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.split("=")[1]) : "";
  }

  function setUp(box) {
    const textarea = box.querySelector("textarea");
    const readonly = box.classList.contains("readonly");
    const fallback = box.querySelector("[data-fallback]");  // the server's highlighting, for pages without JS
    if (fallback) fallback.remove();
    const editor = CodeMirror.fromTextArea(textarea, {
      mode: {name: "python", version: 3}, lineNumbers: true, indentUnit: 4, tabSize: 4, readOnly: readonly,
      gutters: ["CodeMirror-linenumbers", "cm-error-gutter"], viewportMargin: readonly ? Infinity : 10,
      extraKeys: {Tab: (cm) => cm.execCommand(cm.somethingSelected() ? "indentMore" : "insertSoftTab"),
                  "Shift-Tab": "indentLess"},
      screenReaderLabel: textarea.getAttribute("aria-label") || "Reward function",
    });
    editor.getWrapperElement().dataset.editorFor = textarea.name || "";
    box.editor = editor;  // for tests and other scripts
    if (readonly) return;
    editor.on("change", () => editor.save());  // the form posts the textarea

    const marks = [];
    function clearMarks() {
      for (const clear of marks.splice(0)) clear();
    }
    function markLine(line, message) {
      const index = Math.min(Math.max(line - 1, 0), editor.lineCount() - 1);
      editor.addLineClass(index, "background", "cm-error-line");
      const marker = document.createElement("span");
      marker.className = "cm-error-marker";
      marker.textContent = "●";
      marker.title = message;
      editor.setGutterMarker(index, "cm-error-gutter", marker);
      const note = document.createElement("div");
      note.className = "cm-error-note";
      note.textContent = message;
      const widget = editor.addLineWidget(index, note, {coverGutter: false, noHScroll: true});
      marks.push(() => {
        editor.removeLineClass(index, "background", "cm-error-line");
        editor.setGutterMarker(index, "cm-error-gutter", null);
        widget.clear();
      });
      editor.scrollIntoView({line: index, ch: 0}, 80);
    }
    editor.on("change", clearMarks);

    const form = box.closest("form");
    const field = (name) => form && name ? form.elements[name] : null;
    const examplesId = box.dataset.examples;
    const picker = box.querySelector("[data-editor-examples]");
    if (examplesId && picker) {
      const examples = JSON.parse(document.getElementById(examplesId).textContent);
      const note = box.querySelector("[data-example-note]");
      let loaded = editor.getValue(), perTrack = null;  // perTrack: the track-specific example now in the editor
      let asked = 0;  // quick changes of track or car overlap: only the answer to the latest question lands
      // A per-track example (a racing line) is asked of the server for the form's track, direction and the car's
      // top speed (data-top-speed, kept by the page); without a form or a URL it falls back to its static source.
      async function perTrackSource(example) {
        const track = field(box.dataset.trackField), direction = field(box.dataset.directionField);
        if (!box.dataset.perTrackUrl || !track) return example.source;
        const query = new URLSearchParams({track: track.value, direction: direction ? direction.value : "counterclockwise",
                                           max_speed: box.dataset.topSpeed || "4"});
        const response = await fetch(`${box.dataset.perTrackUrl}?${query}`,
                                     {credentials: "same-origin", headers: {Accept: "application/json"}});
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) {
          const detail = answer.detail || Object.values(answer).flat().join(" ");
          throw new Error(detail || `HTTP ${response.status}`);
        }
        return answer.source;
      }
      async function load(example) {
        const question = ++asked;
        let source = example.source;
        if (example.per_track) {
          if (note) { note.hidden = false; note.textContent = "Computing the track's racing line…"; }
          let failure = null;
          try {
            source = await perTrackSource(example);
          } catch (error) {
            failure = error;
          }
          if (question !== asked) return;
          if (note) {
            note.hidden = !failure;
            if (failure) note.textContent = `Could not compute this track's racing line (${failure.message}); the example holds pitlane_technical's.`;
          }
        }
        editor.setValue(source);
        loaded = source;
        perTrack = example.per_track ? example : null;
      }
      picker.addEventListener("change", async () => {
        const example = examples.find((e) => e.name === picker.value);
        picker.value = "";
        if (!example) return;
        const edited = editor.getValue().trim() && editor.getValue() !== loaded;
        if (edited && !window.confirm(`Replace your reward function with “${example.label}”?`)) return;
        await load(example);
        editor.focus();
      });
      // A racing line belongs to its track and car: while the racer has not edited it, it follows their choice.
      box.refreshExample = () => {
        if (perTrack && editor.getValue() === loaded) load(perTrack);
      };
      for (const name of [box.dataset.trackField, box.dataset.directionField]) {
        const input = field(name);
        if (!input) continue;
        for (const element of input instanceof RadioNodeList ? input : [input]) {
          element.addEventListener("change", box.refreshExample);
        }
      }
    }

    const button = box.querySelector("[data-validate]");
    const result = box.querySelector("[data-validation]");
    if (!button) return;
    function show(kind, title, detail, samples) {
      result.hidden = false;
      result.className = `validation ${kind}`;
      result.replaceChildren();
      const heading = document.createElement("strong");
      heading.textContent = title;
      result.appendChild(heading);
      if (detail) {
        const pre = document.createElement("pre");
        pre.textContent = detail;
        result.appendChild(pre);
      }
      if (samples && samples.length) {
        const list = document.createElement("ul");
        list.className = "samples";
        for (const sample of samples) {
          const item = document.createElement("li");
          item.textContent = `${sample.car}: reward ${Number(sample.reward).toFixed(4)}`;
          list.appendChild(item);
        }
        result.appendChild(list);
      }
    }
    button.addEventListener("click", async () => {
      editor.save();
      clearMarks();
      const track = field(box.dataset.trackField), direction = field(box.dataset.directionField);
      const body = {source: editor.getValue(), track: track ? track.value : "",
                    direction: direction ? direction.value : "counterclockwise"};
      button.disabled = true;
      show("pending", "Validating…");
      try {
        const response = await fetch(box.dataset.validateUrl, {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken(form)},
          body: JSON.stringify(body),
        });
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) {
          const detail = answer.detail || Object.entries(answer).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`)
            .join("\n");
          show("invalid", "Could not validate", detail || `HTTP ${response.status}`);
        } else if (answer.valid) {
          show("valid", "Valid: the reward function ran on every synthetic car.", "", answer.samples);
        } else {
          show("invalid", answer.line ? `Error on line ${answer.line}` : "Not valid", answer.message);
          if (answer.line) markLine(answer.line, answer.message.split("\n")[0]);
        }
      } catch (error) {
        show("invalid", "Could not reach the server", String(error));
      } finally {
        button.disabled = false;
      }
    });
  }

  for (const box of document.querySelectorAll("[data-code-editor]")) setUp(box);
})();
