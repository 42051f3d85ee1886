"""Extract Terraform provider schemas from the prebuilt cdktf provider packages.

The npm packages ``@cdktf/provider-google`` and ``@cdktf/provider-archive`` are generated
from ``terraform providers schema -json`` of one exact provider release (named in each
package.json under ``cdktf.provider``). They ship no raw schema file, but their jsii type
metadata (``.jsii``, ~100 MB for google) keeps everything a configuration check needs:

* each resource / data source class names its Terraform type in its doc link
  (``{@link https://registry.terraform.io/.../docs/resources/cloudfunctions2_function
  google_cloudfunctions2_function}``);
* its ``…Config`` struct has one property per argument or block, ``optional`` unless the
  schema requires it, and a doc anchor with the exact Terraform name (``#entry_point``);
* a property typed as another struct is a nested block (``single`` when the struct is used
  directly, i.e. max_items = 1; ``list`` when it is an array of structs);
* getters on the class / ``…OutputReference`` that are not arguments are computed-only
  attributes (``url``, ``service_config[0].uri``).

This script turns that into ``tools/provider-schema/schema.json`` — only the types the
stack could use would be too brittle, so every resource and data source is kept, in a
compact form (about 1.1 MB, one type per line). Regenerate after changing a pin in package.json:

    npm ci --prefix tools/provider-schema
    .venv/bin/python tools/provider-schema/extract.py

tests/infra checks that schema.json was extracted from the pinned package versions and
that the pinned provider release satisfies the constraint in infra/terraform/versions.tf.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGES = ("@cdktf/provider-google", "@cdktf/provider-archive")

_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/[^ ]+/docs/([a-z-]+)/\S+ (\w+)\}"
)
_ANCHOR = re.compile(r"\{@link https://registry\.terraform\.io/\S+#(\w+) \w+#\w+\}")
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
# cdktf's generated JavaScript names every attribute getter's Terraform name in a comment:
#     // md5hash - computed: true, optional: false, required: false
#     get md5Hash() {
_GETTER = re.compile(
    r"^\s*// (\w+) - computed: \w+, optional: \w+, required: \w+\n\s*get (\w+)\(\)", re.M
)


def snake(name: str) -> str:
    """cdktf's camelCase property name back to the Terraform snake_case name."""
    return _CAMEL.sub(r"_\1", name).lower()


class Extractor:
    def __init__(self, jsii: dict[str, Any], package_root: Path | None = None) -> None:
        self.types: dict[str, Any] = jsii["types"]
        self.root = package_root
        self._getters: dict[str, dict[str, str]] = {}

    def _getter_names(self, cls: dict[str, Any]) -> dict[str, str]:
        """camelCase getter -> Terraform name, from the class's generated JavaScript.

        snake() cannot undo every camelCase (``md5hash`` -> ``md5Hash`` -> ``md5_hash``,
        ``crc32c`` -> ``crc32C``), so computed attributes take their names from there.
        """
        source = cls.get("locationInModule", {}).get("filename", "")
        if self.root is None or not source.startswith("src/"):
            return {}
        if source not in self._getters:
            js = self.root / "lib" / Path(source).relative_to("src").with_suffix(".js")
            names: dict[str, str] = {}
            if js.is_file():
                for tf_name, getter in _GETTER.findall(js.read_text(encoding="utf-8")):
                    if names.setdefault(getter, tf_name) != tf_name:
                        raise SystemExit(
                            f"{js}: getter {getter} names {names[getter]} and {tf_name}"
                        )
            self._getters[source] = names
        return self._getters[source]

    def _struct_fqn(self, type_ref: dict[str, Any]) -> tuple[str | None, str | None]:
        """(nesting, struct fqn) when the property is a nested block, else (None, None)."""
        if "union" in type_ref:
            for member in type_ref["union"]["types"]:
                nesting, fqn = self._struct_fqn(member)
                if fqn:
                    return nesting, fqn
            return None, None
        fqn = type_ref.get("fqn")
        if fqn and self.types.get(fqn, {}).get("datatype"):
            return "single", fqn
        coll = type_ref.get("collection")
        if coll and coll["kind"] == "array":
            nesting, fqn = self._struct_fqn(coll["elementtype"])
            if fqn:
                return "list", fqn
        return None, None

    @staticmethod
    def _kind(type_ref: dict[str, Any]) -> str:
        if "primitive" in type_ref:
            return {"boolean": "bool"}.get(type_ref["primitive"], type_ref["primitive"])
        if "union" in type_ref:
            kinds = {
                Extractor._kind(t)
                for t in type_ref["union"]["types"]
                if t.get("fqn") != "cdktf.IResolvable"
            }
            return kinds.pop() if len(kinds) == 1 else "any"
        if "collection" in type_ref:
            return type_ref["collection"]["kind"]  # map | array
        return "any"

    @staticmethod
    def _tf_name(prop: dict[str, Any]) -> str:
        docs = prop.get("docs", {})
        for text in (docs.get("remarks", ""), docs.get("summary", "")):
            match = _ANCHOR.search(text)
            if match:
                return match.group(1)
        return snake(prop["name"])

    def _computed(self, fqn: str | None, inputs: set[str]) -> list[str]:
        cls = self.types.get(fqn or "")
        if not cls:
            return []
        getters = self._getter_names(cls)
        names = set()
        for prop in cls.get("properties", []):
            if prop.get("static") or prop["name"].endswith("Input"):
                continue
            if prop["name"] in {"internalValue", "fqn", "creationStack"}:
                continue
            if not prop.get("immutable"):
                continue  # it has a setter: an argument (detectMd5Hash), not read-only
            name = getters.get(prop["name"]) or snake(prop["name"])
            if name not in inputs:
                names.add(name)
        return sorted(names)

    def block(self, struct_fqn: str, output_fqn: str | None) -> dict[str, Any]:
        """The schema of one block (a resource's config struct or a nested block)."""
        attributes: dict[str, list[Any]] = {}
        blocks: dict[str, Any] = {}
        for prop in self.types[struct_fqn].get("properties", []):
            name = self._tf_name(prop)
            required = 0 if prop.get("optional") else 1
            nesting, nested = self._struct_fqn(prop["type"])
            if nested:
                out = nested + "OutputReference"
                blocks[name] = {
                    "nesting": nesting,
                    "required": required,
                    **self.block(nested, out if out in self.types else None),
                }
            else:
                attributes[name] = [required, self._kind(prop["type"])]
        result: dict[str, Any] = {"attributes": dict(sorted(attributes.items()))}
        if blocks:
            result["blocks"] = dict(sorted(blocks.items()))
        computed = self._computed(output_fqn, set(attributes) | set(blocks))
        if computed:
            result["computed"] = computed
        return result

    def provider(self) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": None, "resources": {}, "data_sources": {}}
        for fqn, cls in sorted(self.types.items()):
            if cls["kind"] != "class":
                continue
            base = cls.get("base")
            if base not in {
                "cdktf.TerraformResource",
                "cdktf.TerraformDataSource",
                "cdktf.TerraformProvider",
            }:
                continue
            config = cls["initializer"]["parameters"][-1]["type"]["fqn"]
            schema = self.block(config, fqn)
            if base == "cdktf.TerraformProvider":
                schema.pop("computed", None)
                out["provider"] = schema
                continue
            match = _LINK.search(cls["docs"]["summary"])
            if not match:
                raise SystemExit(f"{fqn}: no Terraform type in its docs")
            section, tf_type = match.groups()
            key = "resources" if base == "cdktf.TerraformResource" else "data_sources"
            if (section == "resources") != (key == "resources"):
                raise SystemExit(f"{fqn}: {section} link on a {base}")
            out[key][tf_type] = schema
        return out


def extract(node_modules: Path) -> dict[str, Any]:
    providers: dict[str, Any] = {}
    for package in PACKAGES:
        root = node_modules / package
        meta = json.loads((root / "package.json").read_text())
        jsii = json.loads((root / ".jsii").read_text())
        source = meta["cdktf"]["provider"]["name"]  # registry.terraform.io/hashicorp/google
        local_name = source.rsplit("/", 1)[1]
        providers[local_name] = {
            "source": source.removeprefix("registry.terraform.io/"),
            "version": meta["cdktf"]["provider"]["version"],
            "package": f"{package}@{meta['version']}",
            **Extractor(jsii, root).provider(),
        }
    return {
        "_comment": (
            "Generated by tools/provider-schema/extract.py from the npm packages pinned in "
            "tools/provider-schema/package.json. Do not edit. attributes: name -> "
            "[required, kind]; blocks: name -> nesting (single = max one), required, and "
            "the nested schema; computed: read-only attributes."
        ),
        "providers": providers,
    }


def dump(data: dict[str, Any]) -> str:
    """JSON with one resource / data source per line: small, and diffs stay readable."""

    def compact(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    lines = ["{", f' "_comment": {compact(data["_comment"])},', ' "providers": {']
    providers = sorted(data["providers"].items())
    for p_index, (name, provider) in enumerate(providers):
        lines.append(f"  {compact(name)}: {{")
        scalars = {k: v for k, v in provider.items() if k not in {"resources", "data_sources"}}
        for key, value in sorted(scalars.items()):
            lines.append(f"   {compact(key)}: {compact(value)},")
        for s_index, section in enumerate(("data_sources", "resources")):
            lines.append(f"   {compact(section)}: {{")
            items = sorted(provider[section].items())
            for i, (type_, schema) in enumerate(items):
                comma = "," if i < len(items) - 1 else ""
                lines.append(f"    {compact(type_)}: {compact(schema)}{comma}")
            lines.append("   }" + ("," if s_index == 0 else ""))
        lines.append("  }" + ("," if p_index < len(providers) - 1 else ""))
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node-modules", type=Path, default=HERE / "node_modules")
    parser.add_argument("--out", type=Path, default=HERE / "schema.json")
    args = parser.parse_args(argv)
    if not (args.node_modules / PACKAGES[0]).is_dir():
        print(f"run: npm ci --prefix {HERE}", file=sys.stderr)
        return 1
    data = extract(args.node_modules)
    args.out.write_text(dump(data))
    for name, provider in data["providers"].items():
        print(
            f"{name} {provider['version']} ({provider['package']}): "
            f"{len(provider['resources'])} resources, "
            f"{len(provider['data_sources'])} data sources -> {args.out}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
