#!/usr/bin/env python3
"""Config check for deploy/envoy: no envoy binary is packaged for Debian, so `envoy --mode validate`
is not available here. This checks what it can without one:

  * always (PyYAML): envoy.yaml and the route files parse; every cluster a route names exists; the
    RDS route_config_name matches the route files' RouteConfiguration name; every route file ends in
    a catch-all to legacy; v2 routes set x-ingest-version and no route has a retry policy.
  * with `envoy-data-plane` importable (pip install envoy-data-plane pyyaml, e.g. in a venv): every
    field of the bootstrap and of each RouteConfiguration, including typed_config Any payloads by
    their @type, is checked against Envoy's v3 API protos — unknown or misspelled fields, wrong
    enum names and wrong shapes (list vs. message) are errors.

Usage: python3 deploy/envoy/validate.py [envoy.yaml] [routes.json ...]
Exit 0 when valid, 1 with the problems listed otherwise, 2 when PyYAML is missing.
"""
from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import os
import sys
import typing

try:
    import yaml
except ImportError:  # pragma: no cover
    print("validate.py: PyYAML is needed (pip install pyyaml)", file=sys.stderr)
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
problems: list[str] = []


def load(path: str):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# ---- schema check against Envoy's protos (envoy-data-plane) ---------------------------------------

def proto_class(type_url: str):
    """type.googleapis.com/envoy.config.route.v3.RouteAction.RequestMirrorPolicy → the dataclass."""
    full = type_url.split("/")[-1]
    parts = full.split(".")
    for i in range(len(parts) - 1, 0, -1):
        mod_name = "envoy_data_plane." + ".".join(parts[:i])
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        cls = getattr(mod, "".join(parts[i:]), None)
        if cls is not None:
            return cls
    return None


def unwrap(tp):
    """Optional[X] / X | None → X."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return args[0]
    return tp


def check_value(tp, value, where: str) -> None:
    tp = unwrap(tp)
    origin = typing.get_origin(tp)
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list")
            return
        (item,) = typing.get_args(tp)
        for i, v in enumerate(value):
            check_value(item, v, f"{where}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a map")
            return
        _, item = typing.get_args(tp)
        for k, v in value.items():
            check_value(item, v, f"{where}.{k}")
        return
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, str) and value not in tp.__members__:
            problems.append(f"{where}: {value!r} is not one of {', '.join(tp.__members__)}")
        return
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp.__name__ == "Any" and tp.__module__.startswith("envoy_data_plane.google.protobuf"):
            check_any(value, where)
        elif tp.__module__.startswith("envoy_data_plane.google.protobuf") and tp.__name__ in ("Struct", "Value", "ListValue"):
            return
        else:
            check_message(tp, value, where)
        return
    # Scalars, durations ("35s"), wrappers: their textual forms are checked by Envoy only.


def check_any(value, where: str) -> None:
    if not isinstance(value, dict) or "@type" not in value:
        problems.append(f"{where}: typed_config needs an @type")
        return
    cls = proto_class(value["@type"])
    if cls is None:
        problems.append(f"{where}: unknown @type {value['@type']}")
        return
    check_message(cls, {k: v for k, v in value.items() if k != "@type"}, where)


def check_message(cls, value, where: str) -> None:
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a {cls.__name__} message")
        return
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key, v in value.items():
        field = key if key in names else None
        if field is None:
            problems.append(f"{where}: {cls.__name__} has no field {key!r}")
            continue
        check_value(hints[field], v, f"{where}.{key}")


def schema_check(bootstrap: dict, route_files: dict[str, dict]) -> bool:
    try:
        import envoy_data_plane.envoy.config.bootstrap.v3 as bs  # noqa: F401
    except ImportError:
        return False
    check_message(bs.Bootstrap, bootstrap, "envoy.yaml")
    for path, doc in route_files.items():
        for i, res in enumerate(doc.get("resources", [])):
            check_any(res, f"{os.path.basename(path)}.resources[{i}]")
    return True


# ---- structural / semantic checks that need no protos ---------------------------------------------

def walk(node, fn):
    if isinstance(node, dict):
        fn(node)
        for v in node.values():
            walk(v, fn)
    elif isinstance(node, list):
        for v in node:
            walk(v, fn)


def structural(bootstrap: dict, route_files: dict[str, dict]) -> None:
    clusters = {c["name"] for c in bootstrap.get("static_resources", {}).get("clusters", [])}
    rds_names: list[str] = []
    walk(bootstrap, lambda n: rds_names.append(n["rds"]["route_config_name"]) if "rds" in n else None)
    if rds_names != ["ingest_cutover"]:
        problems.append(f"envoy.yaml: expected one rds route_config_name ingest_cutover, found {rds_names}")

    def cluster_refs(n):
        for key in ("cluster",):
            if key in n and isinstance(n[key], str) and n[key] not in clusters and "lb_endpoints" not in str(n):
                problems.append(f"route names cluster {n[key]!r}, which envoy.yaml does not define")

    walk(bootstrap.get("static_resources", {}).get("listeners", []), cluster_refs)
    for path, doc in route_files.items():
        name = os.path.basename(path)
        res = doc.get("resources", [])
        if len(res) != 1 or res[0].get("name") != "ingest_cutover":
            problems.append(f"{name}: expected one RouteConfiguration named ingest_cutover")
            continue
        walk(res, cluster_refs)
        routes = res[0]["virtual_hosts"][0]["routes"]
        last = routes[-1]
        if last.get("match") != {"prefix": "/"} or last["route"]["cluster"] != "ingest_legacy":
            problems.append(f"{name}: the last route must be the catch-all to ingest_legacy")
        for r in routes:
            if "retry_policy" in r.get("route", {}):
                problems.append(f"{name}: route {r.get('name')} retries; a request must reach one pipeline once")
            if r["route"]["cluster"] == "ingest_edge":
                added = {h["header"]["key"]: h["header"]["value"] for h in r.get("request_headers_to_add", [])}
                if added.get("x-ingest-version") != "v2":
                    problems.append(f"{name}: v2 route {r.get('name')} does not set x-ingest-version: v2")


def main(argv: list[str]) -> int:
    envoy_path = argv[0] if argv else os.path.join(HERE, "envoy.yaml")
    route_paths = argv[1:] or [os.path.join(HERE, "cutover-routes.initial.json"), os.path.join(HERE, "cutover-routes.example.json")]
    bootstrap = load(envoy_path)
    route_files = {}
    for p in route_paths:
        with open(p, encoding="utf-8") as f:
            route_files[p] = json.load(f)
    structural(bootstrap, route_files)
    schema = schema_check(bootstrap, route_files)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    how = "structure and Envoy v3 API schema (envoy-data-plane)" if schema else "structure only (envoy-data-plane not installed)"
    print(f"ok: {os.path.basename(envoy_path)} + {len(route_files)} route file(s): {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
