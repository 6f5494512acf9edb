"""Label Studio I/O: the labelling config for the label set, decisions from its JSON export."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def label_studio_config(labels) -> str:
    """The Label Studio labeling interface matching ``export_queue(..., 'label-studio')``."""
    from xml.sax.saxutils import quoteattr

    choices = "\n".join(f"    <Choice value={quoteattr(str(label))}/>" for label in labels)
    return f"""<View>
  <Header value="$queue_reason"/>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="text" choice="single" showInline="true">
{choices}
  </Choices>
  <Choices name="verdict" toName="text" choice="single" showInline="true">
    <Choice value="reject"/>
  </Choices>
  <TextArea name="note" toName="text" rows="2"/>
</View>
"""


def label_studio_decisions(path: Path, role: str = "reviewer") -> Iterator[tuple[int, Any]]:
    """Decisions from a Label Studio JSON export of tasks made by ``export_queue``.

    Per (not cancelled) annotation: a ``verdict`` choice ``reject`` -> reject; a ``label``
    choice different from the task's ``label`` -> edit to that label; otherwise accept.
    ``completed_by`` (email, or ``labelstudio-user-<id>``) is the reviewer, ``lead_time``
    the seconds spent.
    Yields (task number, decision dict or an error string).
    """
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        yield 1, f"not a Label Studio JSON export: {exc}"
        return
    if not isinstance(tasks, list):
        yield 1, "not a Label Studio JSON export: expected a list of tasks"
        return
    for number, task in enumerate(tasks, start=1):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not data.get("example_id"):
            yield number, "task has no data.example_id"
            continue
        for annotation in task.get("annotations") or []:
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            picked: dict[str, str] = {}
            for result in annotation.get("result") or []:
                value = result.get("value") or {}
                if value.get("choices"):
                    picked[result.get("from_name", "label")] = str(value["choices"][0])
                elif value.get("text"):
                    picked[result.get("from_name", "note")] = " ".join(map(str, value["text"]))
            by = annotation.get("completed_by")
            if isinstance(by, dict):
                by = by.get("email") or by.get("username") or by.get("id")
            if isinstance(by, int):
                by = f"labelstudio-user-{by}"
            decision: dict[str, Any] = {
                "example_id": data["example_id"],
                "reviewer": str(by) if by not in (None, "") else "labelstudio",
                "role": role,
                "note": picked.get("note"),
                "decided_at": annotation.get("updated_at") or annotation.get("created_at"),
                "seconds_spent": annotation.get("lead_time"),
            }
            if picked.get("verdict") == "reject":
                decision["decision"] = "reject"
            elif "label" in picked and picked["label"] != data.get("label"):
                decision.update(decision="edit", corrected_response=picked["label"])
            elif "label" in picked:
                decision["decision"] = "accept"
            else:
                yield number, "annotation has neither a label nor a reject verdict"
                continue
            yield number, decision


# --- users --------------------------------------------------------------------------------
