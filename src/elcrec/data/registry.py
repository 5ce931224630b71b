"""The dataset registry (config/datasets.yaml) and the run config's choice of route.

A registry entry names, per route, the source files (URL and checksum), the raw format with its
reader options, the preprocessing, and where the item attributes come from (`attributes`: a
format, the sources it reads, reader options; none when the route has no such block). The run
config picks a route per dataset and may override `sources` and `attributes` (replaced; `null`
drops the attributes), `reader` and `preprocessing` (merged key by key): that is how the smoke
profile points every dataset at the tiny fixtures. Both files are schema-validated
by the workflow before this module sees them.
"""

from __future__ import annotations

import copy
import urllib.parse
from pathlib import Path

import yaml

from elcrec import ElcrecError
from elcrec.data.download import Source

INTERACTIONS = "interactions"
REFERENCE = "reference"
PRETRAINED = "pretrained"
ATTRIBUTES = "attributes"


def load_registry(paths: list[str | Path]) -> dict:
    """Merge registry files; a dataset named in two files is an error, not a silent override."""
    registry: dict = {}
    origin: dict[str, Path] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise ElcrecError(f"dataset registry {path} not found")
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(entries, dict):
            raise ElcrecError(f"{path}: expected a mapping of dataset names to entries")
        for name, entry in entries.items():
            if name in registry:
                raise ElcrecError(f"{path}: dataset {name!r} is already defined in {origin[name]}")
            registry[name], origin[name] = entry, path
    return registry


def resolve_dataset(registry: dict, name: str, selection: dict | None, base_dir: str | Path) -> dict:
    """The full recipe for one dataset: registry route + config overrides, paths made absolute."""
    if name not in registry:
        raise ElcrecError(f"config datasets.{name}: no such dataset in the registry (known: {sorted(registry)})")
    entry, selection = registry[name], selection or {}
    route_name = selection.get("route", entry["default_route"])
    if route_name not in entry["routes"]:
        raise ElcrecError(
            f"config datasets.{name}.route: {route_name!r} is not a route of {name} (routes: {sorted(entry['routes'])})"
        )
    route = copy.deepcopy(entry["routes"][route_name])
    sources = copy.deepcopy(selection.get("sources", route["sources"]))
    for source in sources:
        source["url"] = _absolute_file_url(source.get("url"), Path(base_dir))
    spec = {
        "name": name,
        "title": entry.get("title", name),
        "route": route_name,
        "format": route["format"],
        "sources": sources,
        "reader": {**route.get("reader", {}), **selection.get("reader", {})},
        "preprocessing": {**route.get("preprocessing", {}), **selection.get("preprocessing", {})},
        "notes": route.get("notes", ""),
        "attributes": copy.deepcopy(selection["attributes"] if "attributes" in selection else route.get("attributes")),
    }
    check_route(spec)
    check_attributes(spec)
    return spec


def check_attributes(spec: dict) -> None:
    """Every file the attribute block reads is a source of the route: a config that replaces the
    sources (the smoke profile) must list it again, or say `attributes: null`."""
    block = spec.get("attributes")
    if not block:
        return
    names = {source["name"] for source in spec["sources"]}
    missing = [name for name in block["sources"] if name not in names]
    if missing:
        raise ElcrecError(
            f"config datasets.{spec['name']}: the attributes are read from {missing}, which is not among the route's "
            f"sources {sorted(names)}: add it to `sources`, or set `attributes: null` for a dataset without attributes"
        )


def check_route(spec: dict) -> None:
    """A `sequences` route is the sequence file as it is (the paper route: the benchmark's own
    bytes), so reader options and preprocessing cannot apply to it; refused rather than ignored."""
    if spec["format"] != "sequences":
        return
    ignored = {key: spec[key] for key in ("reader", "preprocessing") if spec.get(key)}
    if ignored:
        keys = " and ".join(f"`{key}`" for key in ignored)
        raise ElcrecError(
            f"config datasets.{spec['name']}: route {spec.get('route')!r} has the format 'sequences', taken as it is, "
            f"so {keys} ({ignored}) would not be applied: remove {keys} (from the config or the registry "
            f"entry), or choose a route with a raw format"
        )


def _absolute_file_url(url: str | None, base_dir: Path) -> str | None:
    """`file://relative/path` is read relative to the repository root, so configs stay portable."""
    if url is None or not url.startswith("file://"):
        return url
    path = Path(urllib.parse.unquote(url[len("file://") :]))
    return (base_dir / path).resolve().as_uri() if not path.is_absolute() else url


def source_of(spec: dict, filename: str) -> Source:
    matches = [source for source in spec["sources"] if source["name"] == filename]
    if len(matches) != 1:
        raise ElcrecError(f"dataset {spec['name']}: no single source named {filename!r}")
    source = matches[0]
    algorithm = next((name for name in ("sha256", "md5") if source.get(name)), None)
    return Source(
        name=source["name"],
        url=source.get("url"),
        algorithm=algorithm,
        digest=source.get(algorithm) if algorithm else None,
    )


def interaction_sources(spec: dict) -> list[str]:
    return [source["name"] for source in spec["sources"] if source.get("role", INTERACTIONS) == INTERACTIONS]


def attribute_sources(spec: dict) -> list[str]:
    """The files the attributes are read from (the interaction archive itself for ML-1M and MIND)."""
    return list((spec.get("attributes") or {}).get("sources", []))


def reference_sources(spec: dict) -> list[str]:
    """The authors' released model files for this route's data (role `reference`): rule `reference`."""
    return [source["name"] for source in spec["sources"] if source.get("role") == REFERENCE]


def pretrained_sources(spec: dict) -> list[str]:
    """Official pre-trained models for this route's data (role `pretrained`: S3-Rec's reproduce/*.pt),
    imported by rule `import_pretrained` as the pre-training named `official`."""
    return [source["name"] for source in spec["sources"] if source.get("role") == PRETRAINED]
