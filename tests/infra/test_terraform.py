"""infra/terraform, checked offline (no terraform binary here): see tests/infra/tfcheck.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import hcl2
import pytest
import requests

from tests.harness import (
    SEED_PAYLOAD,
    TEST_TOKEN,
    clean_env,
    free_port,
    stop_process_group,
    wait_for_port,
)
from tests.infra import tfcheck

PROVIDER_SCHEMA_DIR = tfcheck.ROOT / "tools" / "provider-schema"


@pytest.fixture(scope="module")
def stack() -> tfcheck.Stack:
    return tfcheck.load_stack()


def mutated(tmp_path: Path, file: str, old: str, new: str) -> tfcheck.Stack:
    """A copy of the stack with one edit (which must apply)."""
    copy = tmp_path / "terraform"
    copy.mkdir()
    for path in tfcheck.STACK.glob("*.tf"):
        shutil.copy(path, copy / path.name)
    text = (copy / file).read_text()
    assert old in text, f"mutation {old!r} does not apply to {file}"
    (copy / file).write_text(text.replace(old, new, 1))
    return tfcheck.load_stack(copy)


# ---------------------------------------------------------------------------------------
# Parsing and conventions
# ---------------------------------------------------------------------------------------


def test_every_tf_file_parses(stack: tfcheck.Stack) -> None:
    files = sorted(p.name for p in tfcheck.STACK.glob("*.tf"))
    assert {"versions.tf", "variables.tf", "main.tf", "outputs.tf"} <= set(files)
    assert sorted(stack.texts) == files
    hcl2.loads((tfcheck.STACK / "terraform.tfvars.example").read_text())
    assert len(stack.resources()) > 20


def test_module_conventions(stack: tfcheck.Stack) -> None:
    assert tfcheck.check_conventions(stack) == []


def test_tfvars_example_sets_only_declared_variables(stack: tfcheck.Stack) -> None:
    declared = {b.labels[0] for b in stack.of("variable")}
    example = hcl2.loads((tfcheck.STACK / "terraform.tfvars.example").read_text())
    names = {k.strip('"') for k in example if not k.startswith("__")}
    assert names <= declared, names - declared
    required = {
        b.labels[0]
        for b in stack.of("variable")
        if "default" not in b.attrs and "default" not in b.ambiguous
    }
    assert required <= names, f"the example leaves out required {required - names}"


def test_conventions_catch_an_undocumented_variable(tmp_path: Path) -> None:
    bad = mutated(
        tmp_path,
        "variables.tf",
        'description = "Prefix of every resource name',
        'dummy = "Prefix of every resource name',
    )
    assert any("name_prefix: no description" in p for p in tfcheck.check_conventions(bad))


# ---------------------------------------------------------------------------------------
# The provider schema (@cdktf/provider-google / -archive) and its pin
# ---------------------------------------------------------------------------------------


def _constraint_admits(constraint: str, version: str) -> bool:
    """Terraform's ``~> X.Y`` (and ``>=``/``<``) for plain release versions."""
    have = tuple(int(x) for x in version.split("."))
    for part in constraint.split(","):
        op, want = re.fullmatch(r"\s*(~>|>=|<=|>|<|=)?\s*([\d.]+)\s*", part).groups()
        parts = tuple(int(x) for x in want.split("."))
        padded = have[: len(parts)]
        if op == "~>":
            upper = (*parts[:-2], parts[-2] + 1) if len(parts) > 1 else (parts[0] + 1,)
            if not (have >= parts and have[: len(upper)] < upper):
                return False
        elif (
            (op in (None, "=") and padded != parts)
            or (op == ">=" and have < parts)
            or (op == "<" and have >= parts)
            or (op == ">" and have <= parts)
        ):
            return False
    return True


def test_schema_json_comes_from_the_pinned_packages(stack: tfcheck.Stack) -> None:
    schema = tfcheck.load_schema()
    package = json.loads((PROVIDER_SCHEMA_DIR / "package.json").read_text())
    lock = json.loads((PROVIDER_SCHEMA_DIR / "package-lock.json").read_text())
    (versions,) = stack.of("terraform")
    required = versions.children("required_providers")
    pins = required[0].attrs if required else versions.ambiguous["required_providers"][0]
    for local_name, provider in schema["providers"].items():
        npm_name, npm_version = provider["package"].rsplit("@", 1)
        assert package["dependencies"][npm_name] == npm_version, "re-run extract.py"
        assert lock["packages"][f"node_modules/{npm_name}"]["version"] == npm_version
        pin = pins[local_name]
        pin = pin[0] if isinstance(pin, list) else pin
        assert pin["source"].strip('"') == provider["source"]
        constraint = pin["version"].strip('"')
        assert _constraint_admits(constraint, provider["version"]), (
            f"{local_name}: {constraint} does not admit {provider['version']}, the release "
            "the schema was extracted from"
        )
        # And the schema is not older than what the constraint allows as its minimum.
        floor = re.search(r"[\d.]+", constraint).group(0)
        assert _constraint_admits(f">= {floor}", provider["version"])
    assert schema["providers"]["google"]["version"].startswith("6.")


def test_constraint_helper() -> None:
    assert _constraint_admits("~> 6.50", "6.50.0")
    assert _constraint_admits("~> 6.50", "6.99.1")
    assert not _constraint_admits("~> 6.50", "7.0.0")
    assert not _constraint_admits("~> 6.50", "6.49.0")
    assert _constraint_admits(">= 1.11", "1.11.0")


@pytest.mark.skipif(
    not (PROVIDER_SCHEMA_DIR / "node_modules" / "@cdktf" / "provider-google").is_dir(),
    reason="npm ci --prefix tools/provider-schema not run (schema.json is checked in)",
)
def test_schema_json_is_what_extract_py_makes(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    subprocess.run(
        [sys.executable, str(PROVIDER_SCHEMA_DIR / "extract.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    assert json.loads(out.read_text()) == tfcheck.load_schema()


def test_stack_matches_the_provider_schema(stack: tfcheck.Stack) -> None:
    assert tfcheck.check_schema(stack) == []


MUTATIONS = {
    "misspelled argument": (
        "functions.tf",
        "available_cpu ",
        "availabel_cpu ",
        "unsupported argument 'availabel_cpu'",
    ),
    "misspelled nested block": (
        "functions.tf",
        "storage_source {",
        "storage_sources {",
        "unsupported block type 'storage_sources'",
    ),
    "misspelled argument in a dynamic block": (
        "functions.tf",
        "mount_path = secret_volumes.value",
        "mount_paths = secret_volumes.value",
        "unsupported argument 'mount_paths'",
    ),
    "missing required argument": (
        "firestore.tf",
        "  location_id = local.firestore_location\n",
        "",
        "missing required argument 'location_id'",
    ),
    "missing required block": (
        "secrets.tf",
        "  replication {\n    auto {}\n  }\n",
        "",
        "missing required block 'replication'",
    ),
    "unknown resource type": (
        "apis.tf",
        'resource "google_project_service" "apis"',
        'resource "google_project_services" "apis"',
        "unknown resource type 'google_project_services'",
    ),
    "archive_file argument": (
        "storage.tf",
        "source_dir  = ",
        "source_dirs = ",
        "unsupported argument 'source_dirs'",
    ),
    "read-only attribute set": (
        "storage.tf",
        'content_type = "application/zip"',
        'md5hash = "x"',
        "md5hash is read-only (computed) and cannot be set",
    ),
    # Terraform names are exact: md5hash, not the md5_hash a camelCase round trip guesses.
    "misspelled computed attribute referenced": (
        "outputs.tf",
        "google_storage_bucket_object.functions.name}",
        "google_storage_bucket_object.functions.md5_hash}",
        "has no attribute 'md5_hash'",
    ),
    "unknown attribute referenced": (
        "sites.tf",
        "google_cloudfunctions2_function.receiver.url}",
        "google_cloudfunctions2_function.receiver.uri}",
        "has no attribute 'uri'",
    ),
    "undeclared variable": (
        "main.tf",
        "region  = var.region",
        "region  = var.regoin",
        "undeclared variable var.regoin",
    ),
    "provider argument": (
        "main.tf",
        "default_labels =",
        "default_label =",
        "unsupported argument 'default_label'",
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_schema_check_fails_on(name: str, tmp_path: Path) -> None:
    file, old, new, expected = MUTATIONS[name]
    problems = tfcheck.check_schema(mutated(tmp_path, file, old, new))
    assert any(expected in p for p in problems), problems


# ---------------------------------------------------------------------------------------
# checkov
# ---------------------------------------------------------------------------------------


def test_checkov_passes_offline(stack: tfcheck.Stack) -> None:
    report = tfcheck.run_checkov()
    assert tfcheck.checkov_problems(report) == []
    summary = report["summary"]
    assert summary["passed"] > 20
    skips = sum(text.count("#checkov:skip=") for text in stack.texts.values())
    assert summary["skipped"] >= skips > 0


# ---------------------------------------------------------------------------------------
# Consistency with the code
# ---------------------------------------------------------------------------------------


def test_entry_points_exist_in_main_py(stack: tfcheck.Stack) -> None:
    points = tfcheck.entry_points(stack)
    assert points == {
        "receive_power_event",
        "reconcile_subscriptions",
        "teardown_subscriptions",
        "sample_load",
        "power_report",
    }
    assert points <= tfcheck.main_functions()


def test_environment_is_exactly_what_the_code_reads(stack: tfcheck.Stack) -> None:
    from gridhook.settings import DEV_ENV_VARS, ENV_VARS

    assert set(tfcheck.code_env_vars()) == set(ENV_VARS)
    assert tfcheck.check_env(stack) == []
    env = tfcheck.function_env(stack)
    assert set(env) == set(tfcheck.REQUIRED_ENV)
    set_anywhere = set().union(*env.values())
    # Every setting the code reads is set by Terraform, except the secrets themselves
    # (mounted, and named by the *_FILE settings) and GRIDHOOK_SITES_FILE (Terraform sets
    # the same structure as GRIDHOOK_SITES) ...
    unset = set(ENV_VARS) - set_anywhere
    assert unset == tfcheck.SECRET_ENV | set(tfcheck.ALTERNATIVE_ENV), unset
    # ... and development settings are never set anywhere.
    assert DEV_ENV_VARS and not set(DEV_ENV_VARS) & (set_anywhere | set(ENV_VARS))
    assert env["power_report"] == {
        "GRIDHOOK_STORE",
        "GRIDHOOK_STORE_TIMEOUT_SECONDS",
        "GRIDHOOK_LOG_LEVEL",
        "GRIDHOOK_RAMP_DEADLINE_SECONDS",
        "GRIDHOOK_INTERVAL_MIN_COVERAGE",
        "GRIDHOOK_BASELINE_METHOD",
        "GRIDHOOK_SITES",
        "GRIDHOOK_TIMEZONE",
    }
    jobs = {"GRIDHOOK_RAMP_DEADLINE_SECONDS", "GRIDHOOK_RECONCILE_CONCURRENCY"}
    assert jobs <= env["reconcile_subscriptions"] == env["teardown_subscriptions"]
    # Reconcile no longer samples: the sample settings are sample_load's, which holds no
    # webhook token (it registers nothing).
    retention = {"GRIDHOOK_SAMPLE_RETENTION_DAYS", "GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS"}
    assert retention <= env["sample_load"]
    assert not retention & env["reconcile_subscriptions"]
    assert not {"GRIDHOOK_WEBHOOK_TOKENS_FILE", "GRIDHOOK_WEBHOOK_URL"} & env["sample_load"]
    # Every function learns its sites.
    for names in env.values():
        assert names >= tfcheck.SITES_ENV


def test_env_check_fails_on_an_unknown_variable(tmp_path: Path) -> None:
    bad = mutated(
        tmp_path,
        "functions.tf",
        'GRIDHOOK_ALLOW_UNAUTHENTICATED = "0"',
        'GRIDHOOK_ALLOW_UNAUTHENTICATED = "0"\n    GRIDHOOK_BOGUS_SETTING = "1"',
    )
    problems = tfcheck.check_env(bad)
    assert any("GRIDHOOK_BOGUS_SETTING, which the code does not read" in p for p in problems)


def test_env_check_fails_on_a_secret_as_plain_env(tmp_path: Path) -> None:
    bad = mutated(
        tmp_path,
        "functions.tf",
        "NVGRID_TLS              = var.nvgrid_tls",
        'NVGRID_TLS = var.nvgrid_tls\n      NVGRID_PASSWORD = "hunter2"',
    )
    assert any("secret NVGRID_PASSWORD" in p for p in tfcheck.check_env(bad))


def test_env_check_fails_when_a_needed_variable_is_missing(tmp_path: Path) -> None:
    bad = mutated(tmp_path, "functions.tf", "NVGRID_HOST             =", "X_HOST =")
    problems = tfcheck.check_env(bad, known=[*tfcheck.code_env_vars(), "X_HOST"])
    assert any("does not set NVGRID_HOST" in p for p in problems)


REPORT_ENV_END = "      GRIDHOOK_BASELINE_METHOD       = var.baseline_method\n    }"


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "functions.tf",
            "GRIDHOOK_RECONCILE_CONCURRENCY      = tostring(var.reconcile_concurrency)",
            "GRIDHOOK_RECONCILE_CONCURRENCY = tostring(var.reconcile_concurrency)\n"
            '      GRIDHOOK_DEV_CLOCK = "1440@2026-11-29T02:00:00Z@2026-11-30T02:00:00Z"',
            "reconcile_subscriptions: sets GRIDHOOK_DEV_CLOCK, a development-only setting",
        ),
        (
            "variables.tf",
            'default     = "INFO"',
            'default     = "INFO" # GRIDHOOK_DEV_CLOCK = "60@x@y"\n  sensitive = false\n'
            '  nullable = "${"GRIDHOOK_DEV_CLOCK"}"',
            "variables.tf: sets GRIDHOOK_DEV_CLOCK; development settings are never deployed",
        ),
        (
            "functions.tf",
            REPORT_ENV_END,
            REPORT_ENV_END.replace("\n    }", "\n      NVGRID_HOST = var.nvgrid_host\n    }"),
            "power_report: sets NVGRID_HOST; power_report never talks to DPS",
        ),
        (
            "functions.tf",
            REPORT_ENV_END,
            REPORT_ENV_END.replace(
                "\n    }",
                '\n      GRIDHOOK_WEBHOOK_TOKENS_FILE = "/secrets/default/webhook-tokens/value"'
                "\n    }",
            ),
            "power_report: sets GRIDHOOK_WEBHOOK_TOKENS_FILE; its environment is exactly",
        ),
    ],
    ids=["dev clock in the jobs", "dev clock anywhere", "report nvgrid", "report token file"],
)
def test_env_check_fails_on(tmp_path: Path, file: str, old: str, new: str, expected: str) -> None:
    problems = tfcheck.check_env(mutated(tmp_path, file, old, new))
    assert any(expected in p for p in problems), problems


def test_env_check_allows_naming_a_dev_setting_in_a_comment(tmp_path: Path) -> None:
    commented = mutated(
        tmp_path,
        "functions.tf",
        "locals {",
        "# GRIDHOOK_DEV_CLOCK is for demos only and never set here.\nlocals {",
    )
    assert tfcheck.check_env(commented) == []


# ---------------------------------------------------------------------------------------
# power_report: private and read-only
# ---------------------------------------------------------------------------------------


def test_power_report_is_private_and_read_only(stack: tfcheck.Stack) -> None:
    assert tfcheck.check_power_report(stack) == []
    assert tfcheck.function_secrets(stack)["power_report"] == []
    assert tfcheck.account_roles(stack)["report"] == {
        "roles/datastore.viewer",
        "roles/logging.logWriter",
    }
    # The helpers see the other functions' grants too (so the check is not vacuous).
    assert tfcheck.function_secrets(stack)["receive_power_event"]
    assert "roles/datastore.user" in tfcheck.account_roles(stack)["receiver"]
    viewers = stack.get("resource", "google_cloud_run_v2_service_iam_member", "report_viewers")
    assert "var.report_viewers" in viewers.attrs["for_each"]
    assert tfcheck._unquote(viewers.attrs["role"]) == "roles/run.invoker"


REPORT_MISTAKES = {
    "a secret mounted": (
        "functions.tf",
        "    environment_variables = local.report_env\n",
        "    environment_variables = local.report_env\n"
        "    secret_volumes {\n"
        "      project_id = var.project_id\n"
        '      secret     = google_secret_manager_secret.secrets["webhook_tokens"].secret_id\n'
        '      mount_path = "/etc/secrets/webhook-tokens"\n'
        "    }\n",
        "power_report mounts secret_volumes",
    ),
    "a write role": (
        "iam.tf",
        'role    = "roles/datastore.viewer"',
        'role    = "roles/datastore.user"',
        "the report account holds roles/datastore.user; power_report is read-only",
    ),
    "the writers' Firestore grant": (
        "iam.tf",
        'firestore_users = toset(["receiver", "jobs", "sampler"])',
        'firestore_users = toset(["receiver", "jobs", "sampler", "report"])',
        "the report account holds roles/datastore.user",
    ),
    "a secret accessor grant": (
        "secrets.tf",
        'webhook_tokens     = ["receiver", "jobs"]',
        'webhook_tokens     = ["receiver", "jobs", "report"]',
        "the report account holds roles/secretmanager.secretAccessor",
    ),
    "another function's account": (
        "functions.tf",
        'service_account_email          = google_service_account.sa["report"].email',
        'service_account_email          = google_service_account.sa["jobs"].email',
        "power_report runs as ['jobs'], not its own read-only 'report' account",
    ),
    "public access": (
        "functions.tf",
        "  member   = each.value\n",
        '  member   = "allUsers"\n',
        "only the receiver is public",
    ),
    "an invoker outside report_viewers": (
        "functions.tf",
        "  member   = each.value\n",
        '  member   = "user:someone@example.com"\n',
        "its invokers come only from var.report_viewers",
    ),
}


@pytest.mark.parametrize("name", sorted(REPORT_MISTAKES))
def test_power_report_check_fails_on(name: str, tmp_path: Path) -> None:
    file, old, new, expected = REPORT_MISTAKES[name]
    bad = mutated(tmp_path, file, old, new)
    problems = tfcheck.check_power_report(bad)
    assert any(expected in p for p in problems), problems
    assert tfcheck.check_schema(bad) == []  # each mistake is valid Terraform


def _validation_regex(variable: str) -> re.Pattern[str]:
    text = (tfcheck.STACK / "variables.tf").read_text()
    block = text[text.index(f'variable "{variable}"') :]
    raw = re.search(r'regex\("((?:[^"\\]|\\.)*)"', block).group(1)
    return re.compile(json.loads(f'"{raw}"'))  # HCL string escapes, as JSON's


@pytest.mark.parametrize(
    ("member", "valid"),
    [
        ("user:ana@example.com", True),
        ("group:grid-ops@example.com", True),
        ("serviceAccount:dash@my-grid-project.iam.gserviceaccount.com", True),
        ("domain:example.com", True),
        ("principalSet://iam.googleapis.com/locations/global/workforcePools/p/group/g", True),
        ("allUsers", False),
        ("allAuthenticatedUsers", False),
        ("ana@example.com", False),
        ("user:", False),
        ("user:ana @example.com", False),
    ],
)
def test_report_viewers_validation(member: str, valid: bool) -> None:
    # Terraform's regex is RE2; this pattern uses nothing Python's re reads differently.
    assert bool(_validation_regex("report_viewers").search(member)) is valid


def test_computed_attributes_carry_their_terraform_names() -> None:
    # extract.py reads them from cdktf's JavaScript: md5hash, not md5_hash (camelCase
    # md5Hash snake-cased); detect_md5hash is an argument (it has a setter), not computed.
    resources = tfcheck.load_schema()["providers"]["google"]["resources"]
    computed = set(resources["google_storage_bucket_object"]["computed"])
    assert {"md5hash", "crc32c", "media_link"} <= computed
    assert not {"md5_hash", "crc32_c", "detect_md5_hash", "detect_md5hash"} & computed
    build = resources["google_cloudfunctions2_function"]["blocks"]["build_config"]
    assert "build" in build["computed"]


# ---------------------------------------------------------------------------------------
# Sites: secrets by least privilege, a Scheduler job per site, GRIDHOOK_SITES, labels
# ---------------------------------------------------------------------------------------


def test_sites_are_checked_and_pass(stack: tfcheck.Stack) -> None:
    assert tfcheck.check_secret_access(stack) == []
    assert tfcheck.check_site_jobs(stack) == []
    assert tfcheck.check_sites_json(stack) == []
    assert tfcheck.check_metric_labels(stack) == []
    locals_ = stack.locals()
    # Least privilege, stated once: the receiver cannot read an NvGrid secret, sample_load
    # cannot read a webhook token, power_report reads nothing.
    assert locals_["secret_readers"] == {
        "webhook_tokens": ["receiver", "jobs"],
        "nvgrid_credentials": ["jobs", "sampler"],
        "nvgrid_ca": ["jobs", "sampler"],
    }
    roles = tfcheck.account_roles(stack)
    assert tfcheck.SECRET_ACCESSOR in roles["receiver"] & roles["jobs"] & roles["sampler"]
    assert roles["sampler"] == {
        "roles/datastore.user",
        "roles/logging.logWriter",
        "roles/secretmanager.secretAccessor",
    }
    assert tfcheck.SECRET_ACCESSOR not in roles["report"] | roles["scheduler"]
    secrets = tfcheck.function_secrets(stack)
    assert secrets["receive_power_event"] == ['secret_volumes (${local.secret_mounts["receiver"]})']
    assert secrets["sample_load"] == ['secret_volumes (${local.secret_mounts["sampler"]})']
    # Mounted under /secrets/<site>/; each site's secrets, jobs and URL carry its name.
    assert locals_["secret_mount_root"] == "/secrets"
    assert "${local.secret_mount_root}/${name}/${spec.id}" in str(locals_["site_secrets"])
    # Every metric has a site label, and the counters gained one for sampling failures.
    assert set(locals_["metric_labels"]) == {"outcome", "site"}
    assert "site" in tfcheck.code_log_fields()


def test_site_jobs_are_one_reconcile_and_one_sample_per_site(stack: tfcheck.Stack) -> None:
    jobs = str(stack.locals()["site_jobs"])
    assert "for name in keys(local.sites)" in jobs
    assert "reconcile/${name}" in jobs and "sample/${name}" in jobs
    assert "${var.sample_schedule}" in jobs and "${var.reconcile_schedule}" in jobs
    site = stack.get("resource", "google_cloud_scheduler_job", "site")
    assert tfcheck._unquote(site.child("http_target").attrs["uri"]).endswith(
        "?site=${each.value.site}"
    )
    # The teardown job is one for all sites, and paused.
    teardown = stack.get("resource", "google_cloud_scheduler_job", "teardown")
    assert teardown.attrs["paused"] in (True, "true") and "for_each" not in teardown.attrs


SITE_MISTAKES = {
    "the receiver reads NvGrid credentials": (
        "secrets.tf",
        'nvgrid_credentials = ["jobs", "sampler"]',
        'nvgrid_credentials = ["jobs", "sampler", "receiver"]',
        "check_secret_access",
        "the receiver account can read nvgrid_credentials; it may read only webhook_tokens",
    ),
    "the receiver reads the CA": (
        "secrets.tf",
        'nvgrid_ca          = ["jobs", "sampler"]',
        'nvgrid_ca          = ["jobs", "sampler", "receiver"]',
        "check_secret_access",
        "the receiver account can read nvgrid_ca",
    ),
    "sample_load reads webhook tokens": (
        "secrets.tf",
        'webhook_tokens     = ["receiver", "jobs"]',
        'webhook_tokens     = ["receiver", "jobs", "sampler"]',
        "check_secret_access",
        "the sampler account can read webhook_tokens; it may read only nvgrid_ca, "
        "nvgrid_credentials",
    ),
    "power_report reads a secret": (
        "secrets.tf",
        'nvgrid_ca          = ["jobs", "sampler"]',
        'nvgrid_ca          = ["jobs", "sampler", "report"]',
        "check_secret_access",
        "the report account can read nvgrid_ca; it may read no secret",
    ),
    "the jobs cannot log in to DPS": (
        "secrets.tf",
        'nvgrid_credentials = ["jobs", "sampler"]',
        'nvgrid_credentials = ["sampler"]',
        "check_secret_access",
        "the jobs account cannot read nvgrid_credentials, which it needs",
    ),
    "the receiver mounts the jobs' secrets": (
        "functions.tf",
        'for_each = local.secret_mounts["receiver"]',
        'for_each = local.secret_mounts["jobs"]',
        "check_secret_access",
        "receive_power_event: mounts ['jobs'] but runs as 'receiver'",
    ),
    "a grant beside the table": (
        "iam.tf",
        "# Firestore: read and write documents",
        'resource "google_secret_manager_secret_iam_member" "receiver_dps" {\n'
        "  project   = var.project_id\n"
        '  secret_id = google_secret_manager_secret.secrets["default/nvgrid_credentials"]'
        ".secret_id\n"
        '  role      = "roles/secretmanager.secretAccessor"\n'
        '  member    = google_service_account.sa["receiver"].member\n'
        "}\n\n# Firestore: read and write documents",
        "check_secret_access",
        "receiver_dps: grants roles/secretmanager.secretAccessor outside local.secret_grants",
    ),
    "a secret as an environment variable": (
        "functions.tf",
        "    environment_variables = local.receiver_env\n",
        "    environment_variables = local.receiver_env\n"
        "    secret_environment_variables {\n"
        '      key        = "NVGRID_CREDENTIALS_FILE"\n'
        "      project_id = var.project_id\n"
        '      secret     = "gridhook-nvgrid-credentials"\n'
        '      version    = "latest"\n'
        "    }\n",
        "check_secret_access",
        "receive_power_event: a secret_environment_variables block",
    ),
    "a site job without ?site=": (
        "scheduler.tf",
        'uri         = "${each.value.function_url}?site=${each.value.site}"',
        "uri         = each.value.function_url",
        "check_site_jobs",
        "google_cloud_scheduler_job.site: the job does not send ?site=${each.value.site}",
    ),
    "a site job sending another site": (
        "scheduler.tf",
        'site         = name\n        name         = "${var.name_prefix}-sample',
        'site         = "default"\n        name         = "${var.name_prefix}-sample',
        "check_site_jobs",
        "job sample/… does not send its own site",
    ),
    "no sample job per site": (
        "scheduler.tf",
        "function_url = google_cloudfunctions2_function.sampler.url",
        'function_url = google_cloudfunctions2_function.jobs["reconcile"].url',
        "check_site_jobs",
        "no Scheduler job per site calls sample_load",
    ),
    "a site job with the teardown account's token": (
        "scheduler.tf",
        'service_account_email = google_service_account.sa["scheduler"].email',
        'service_account_email = google_service_account.sa["teardown"].email',
        "check_site_jobs",
        "google_cloud_scheduler_job.site: the OIDC token is not the scheduler account's",
    ),
    "an OIDC audience with the query": (
        "scheduler.tf",
        "audience = each.value.function_url",
        'audience = "${each.value.function_url}?site=${each.value.site}"',
        "check_site_jobs",
        "the OIDC audience is not the function's URL",
    ),
    "a key sites.py does not read": (
        "sites.tf",
        "webhook_tokens_file     = local.site_secrets",
        "webhook_token_file      = local.site_secrets",
        "check_sites_json",
        "GRIDHOOK_SITES: key webhook_token_file is not one gridhook.sites reads",
    ),
    "a metric without the site label": (
        "monitoring.tf",
        '    site    = "site"\n',
        "",
        "check_metric_labels",
        "google_logging_metric.counters: no site label extracted from jsonPayload.site",
    ),
    "a site label from a field nobody logs": (
        "monitoring.tf",
        'site    = "site"',
        'site    = "site_name"',
        "check_metric_labels",
        "no site label extracted from jsonPayload.site",
    ),
    "an alert summing the sites together": (
        "monitoring.tf",
        '        group_by_fields = ["metric.label.site"]\n',
        "",
        "check_metric_labels",
        "google_monitoring_alert_policy.alerts: does not group by metric.label.site",
    ),
}


@pytest.mark.parametrize("name", sorted(SITE_MISTAKES))
def test_site_checks_fail_on(name: str, tmp_path: Path) -> None:
    file, old, new, check, expected = SITE_MISTAKES[name]
    bad = mutated(tmp_path, file, old, new)
    problems = getattr(tfcheck, check)(bad)
    assert any(expected in p for p in problems), problems
    assert tfcheck.check_schema(bad) == []  # each mistake is valid Terraform


def test_label_check_names_a_field_no_log_line_carries(tmp_path: Path) -> None:
    bad = mutated(
        tmp_path,
        "monitoring.tf",
        '    site    = "site"\n',
        '    site    = "site"\n    region = "region_name"\n',
    )
    problems = tfcheck.check_metric_labels(bad)
    assert any(
        "label region extracts jsonPayload.region_name, which no log line" in p for p in problems
    ), problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "      GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS  = tostring(var.raw_sample_retention_days)",
            "      GRIDHOOK_RAW_SAMPLE_RETENTION_DAYS  = tostring(var.raw_sample_retention_days)\n"
            '      GRIDHOOK_WEBHOOK_TOKENS_FILE = "/secrets/default/webhook-tokens/value"',
            "sample_load: sets GRIDHOOK_WEBHOOK_TOKENS_FILE; its environment is exactly",
        ),
        (
            "      GRIDHOOK_LOG_LEVEL             = var.log_level\n    },\n    local.sites_env,",
            "      GRIDHOOK_LOG_LEVEL             = var.log_level\n"
            '      GRIDHOOK_SITES_FILE = "/secrets/sites.toml"\n    },\n    local.sites_env,',
            "sets GRIDHOOK_SITES_FILE; Terraform sets GRIDHOOK_SITES instead",
        ),
    ],
    ids=["a token for sample_load", "a sites file"],
)
def test_site_env_check_fails_on(old: str, new: str, expected: str, tmp_path: Path) -> None:
    problems = tfcheck.check_env(mutated(tmp_path, "functions.tf", old, new))
    assert any(expected in p for p in problems), problems


def _validation_regexes(variable: str) -> list[re.Pattern[str]]:
    text = (tfcheck.STACK / "variables.tf").read_text()
    block = text[text.index(f'variable "{variable}"') :]
    block = block[: block.index("\nvariable ") if "\nvariable " in block else None]
    raws = re.findall(r'regex\("((?:[^"\\]|\\.)*)"', block)
    return [re.compile(json.loads(f'"{raw}"')) for raw in raws]


def test_site_name_validation_is_the_code_s() -> None:
    from gridhook.sites import SITE_NAME

    name_rx = _validation_regexes("sites")[0]
    for name in ("phx1", "default", "a", "ams-2", "9" * 63, "x" * 64, "Phx1", "-a", "a_b", ""):
        assert bool(name_rx.fullmatch(name)) == bool(SITE_NAME.fullmatch(name)), name


def test_timezone_validation_takes_every_iana_zone_of_an_area() -> None:
    import zoneinfo

    for variable in ("sites", "timezone"):
        tz_rx = next(rx for rx in _validation_regexes(variable) if "America" in rx.pattern)
        areas = re.search(r"\(([A-Za-z|]+)\)/", tz_rx.pattern).group(1).split("|")
        zones = {z for z in zoneinfo.available_timezones() if z.split("/")[0] in areas}
        assert len(zones) > 300
        assert all(tz_rx.search(zone) for zone in zones | {"UTC"}), variable
        for bad in ("Mars/Olympus_Mons", "america/phoenix", "Europe/Paris/", "UTC+1", "", "PST"):
            assert not tz_rx.search(bad), (variable, bad)


def test_the_example_sites_are_valid_for_terraform_and_for_gridhook() -> None:
    """The two-site example passes the variable's validations and, written as Terraform
    writes GRIDHOOK_SITES (sites.tf: the secrets' mount paths as files), gridhook.sites."""
    from gridhook.sites import parse_sites

    example = hcl2.loads((tfcheck.STACK / "terraform.tfvars.example").read_text())
    sites = example["sites"]
    sites = sites[0] if isinstance(sites, list) else sites
    assert len(sites) == 2
    name_rx, tz_rx = _validation_regexes("sites")[:2]
    written = {}
    for name, site in sites.items():
        site = {k: v[0] if isinstance(v, list) else v for k, v in site.items()}
        assert name_rx.fullmatch(name) and tz_rx.search(site["timezone"])
        assert site.get("nvgrid_tls", "verify") in ("verify", "skip-verify", "plaintext")
        files = {
            "nvgrid_credentials_file": f"/secrets/{name}/nvgrid-credentials/value",
            "webhook_tokens_file": f"/secrets/{name}/webhook-tokens/value",
        }
        if site.get("nvgrid_custom_ca"):
            files["nvgrid_ca_cert"] = f"/secrets/{name}/nvgrid-ca/value"
        written[name] = {
            "timezone": site["timezone"],
            "nvgrid_host": site["nvgrid_host"],
            "nvgrid_tls": site.get("nvgrid_tls", "verify"),
            **files,
        }
    parsed = parse_sites({"sites": written}, "GRIDHOOK_SITES")
    assert parsed.names == ("phx1", "ams2") and parsed.several
    assert {site.zone.key for site in parsed} == {"America/Phoenix", "Europe/Amsterdam"}
    assert parsed.get("phx1").nvgrid_ca_cert == "/secrets/phx1/nvgrid-ca/value"
    assert parsed.get("ams2").nvgrid_ca_cert is None


# ---------------------------------------------------------------------------------------
# Firestore indexes and log-based metrics, against the code
# ---------------------------------------------------------------------------------------


def test_firestore_indexes_match_the_store_queries(stack: tfcheck.Stack) -> None:
    assert tfcheck.check_firestore(stack) == []
    # The query shapes of FirestoreEventStore: events() with feed_tag, correlation_id or
    # both, either order (range and order on sort_key); latest_by_feed() (feed_tag ==,
    # sort_key DESC); samples() by feed (sort_key ASC). The rest need no composite: events
    # in write order range on stored_key alone and filter what they read.
    asc, desc = "ASCENDING", "DESCENDING"
    assert tfcheck.firestore_indexes(stack) == {
        ("power_events", (("feed_tag", asc), ("sort_key", asc))),
        ("power_events", (("correlation_id", asc), ("sort_key", asc))),
        ("power_events", (("feed_tag", asc), ("correlation_id", asc), ("sort_key", asc))),
        ("power_events", (("feed_tag", asc), ("sort_key", desc))),
        ("power_events", (("correlation_id", asc), ("sort_key", desc))),
        ("power_events", (("feed_tag", asc), ("correlation_id", asc), ("sort_key", desc))),
        ("samples", (("feed_tag", asc), ("sort_key", asc))),
        ("rollups", (("feed", asc), ("sort_key", asc))),
        ("day_rollups", (("feed", asc), ("sort_key", asc))),
        ("meter_intervals", (("feed", asc), ("sort_key", asc))),
    }
    queried = tfcheck.firestore_queries()
    assert queried["rollups"] == {"feed", "sort_key"}
    assert queried["day_rollups"] == {"feed", "sort_key"}
    assert queried["meter_intervals"] == {"feed", "sort_key"}
    assert queried["power_events"] == {"feed_tag", "correlation_id", "sort_key", "stored_key"}
    assert queried["quarantine"] == {"sort_key"}
    assert queried["samples"] == {"feed_tag", "sort_key"}
    assert queried["alerts"] == {"sort_key"}
    fields = {(f["collection"], f["field"]): f for f in tfcheck.firestore_fields(stack)}
    assert fields["quarantine", "expires_at"]["ttl"] and fields["samples", "expires_at"]["ttl"]
    assert fields["rollups", "expires_at"]["ttl"] and fields["day_rollups", "expires_at"]["ttl"]
    assert ("meter_intervals", "expires_at") not in fields  # the settlement record: kept
    assert fields["quarantine", "sort_key"]["indexes"] == [asc, desc]
    assert fields["power_events", "sort_key"]["indexes"] == [asc, desc]
    assert fields["power_events", "stored_key"]["indexes"] == [asc, desc]
    assert fields["power_events", "received_at"]["indexes"] == []


def query_recorder():
    """A gRPC client interceptor keeping the shape of every query the client sends."""
    import grpc

    class QueryRecorder(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
        def __init__(self) -> None:
            self.shapes: set[tfcheck.QueryShape] = set()
            self.parents: set[str] = set()
            self.collection_groups = 0  # COLLECTION-scoped indexes would not serve them

        def intercept_unary_stream(self, continuation, client_call_details, request):
            if client_call_details.method.endswith("/RunQuery"):
                self.shapes.add(tfcheck.query_shape(request.structured_query))
                self.parents.add(request.parent.partition("/documents")[2])
                self.collection_groups += request.structured_query.from_[0].all_descendants
            return continuation(client_call_details, request)

        def intercept_unary_unary(self, continuation, client_call_details, request):
            return continuation(client_call_details, request)

    return QueryRecorder()


def _send_every_query(store) -> None:
    """Every public read of the store, with every combination of its filters and orders,
    on the default site (root collections) and another (its sites/{site} subcollections)."""
    from datetime import UTC, datetime, timedelta
    from itertools import product

    from gridhook.events import normalise
    from gridhook.store import EventOrder, EventQuery, LoadSample, SampleQuery

    now = datetime.now(UTC)
    for site in ("default", "phx1"):
        store.add_event(normalise({**SEED_PAYLOAD, "feed_tag": "feed_a"}, now, site=site))
        store.add_sample(
            LoadSample("feed_a", now, 1.0, 2.0, None, now + timedelta(days=1), site=site)
        )
        for feed, corr, since, newest_first, order in product(
            [None, "feed_a"], [None, "c1"], [None, now], [False, True], EventOrder
        ):
            store.events(
                EventQuery(
                    feed,
                    corr,
                    since=since,
                    newest_first=newest_first,
                    limit=1,
                    order=order,
                    site=site,
                )
            )
        store.latest_by_feed(site=site)
        for feed, since in product([None, "feed_a"], [None, now]):
            store.samples(SampleQuery(feed_tag=feed, since=since, limit=1, site=site))
        for newest_first in (False, True):
            store.quarantined(limit=1, newest_first=newest_first, site=site)
        store.alerts(site=site)
        store.drift(site=site)
        store.subscriptions(site=site)


def _send_every_interval_query(store) -> None:
    """Every read of interval data (rollups, day rollups, meter intervals), on the default
    site and another (its sites/{site} subcollections)."""
    from datetime import UTC, datetime, timedelta

    from gridhook.store import DayRollupQuery, MeterQuery, RollupQuery

    now = datetime.now(UTC)
    for site in ("default", "phx1"):
        for feed in (None, "feed_a"):
            store.rollups(
                RollupQuery(since=now - timedelta(days=1), until=now, feed=feed, site=site)
            )
            store.day_rollups(
                DayRollupQuery(since=now - timedelta(days=9), until=now, feed=feed, site=site)
            )
        store.meter_records(
            MeterQuery(feed="feed_a", since=now - timedelta(days=1), until=now, site=site)
        )


@pytest.mark.firestore
def test_every_query_the_store_sends_has_its_index(
    stack: tfcheck.Stack, firestore_env: dict[str, str]
) -> None:
    """The queries themselves, seen on the wire against the emulator (which needs no
    index, unlike Firestore): each is served by an index in firestore.tf, and each
    composite index serves one of them."""
    import grpc
    from google.cloud import firestore

    from gridhook.store.firestore import FirestoreEventStore

    project, database = firestore_env["GRIDHOOK_STORE"].removeprefix("firestore://").split("/")
    recorder = query_recorder()
    client = firestore.Client(project=project, database=database)
    make_channel = client._emulator_channel  # test-only: wrap the emulator channel
    client._emulator_channel = lambda transport: grpc.intercept_channel(
        make_channel(transport), recorder
    )
    store = FirestoreEventStore(project, database, client=client)
    try:
        _send_every_query(store)
        _send_every_interval_query(store)
    finally:
        store.close()
    assert tfcheck.firestore_index_problems(stack, recorder.shapes) == []
    # Another site's queries are of its subcollections, never collection-group queries: the
    # COLLECTION-scoped indexes above serve them as they serve the default site's.
    assert recorder.parents == {"", "/sites/phx1"} and recorder.collection_groups == 0
    # The queries sent touch every field the code queries (static parse): none untried.
    sent: dict[str, set[str]] = {}
    for shape in recorder.shapes:
        fields = {*shape.equalities, *shape.ranges, *(f for f, _ in shape.orders)}
        sent.setdefault(shape.collection, set()).update(fields)
    assert sent == {c: f for c, f in tfcheck.firestore_queries().items() if f}


EVENTS_BY_CORRELATION_NEWEST = tfcheck.QueryShape(
    "power_events", ("correlation_id",), ("sort_key",), (("sort_key", "DESCENDING"),)
)


@pytest.mark.parametrize(
    ("shape", "old", "new", "expected"),
    [
        # A newest-first episode listing without its composite index.
        (
            EVENTS_BY_CORRELATION_NEWEST,
            "    by_correlation_newest = ",
            "    # by_correlation_newest = ",
            "power_events: correlation_id ==, sort_key range, order by sort_key DESCENDING: "
            "no composite index serves it",
        ),
        # The index in the wrong direction.
        (
            EVENTS_BY_CORRELATION_NEWEST,
            'by_correlation_newest = [["correlation_id", "ASCENDING"], ["sort_key", "DESCENDING"]]',
            'by_correlation_newest = [["correlation_id", "ASCENDING"], ["sort_key", "ASCENDING"]]',
            "no composite index serves it",
        ),
        # Newest first without a filter, with the single-field index ascending only.
        (
            tfcheck.QueryShape("power_events", (), (), (("sort_key", "DESCENDING"),)),
            'field = "sort_key", indexes = ["ASCENDING", "DESCENDING"] }\n    # Quarantine',
            'field = "sort_key", indexes = ["ASCENDING"] }\n    # Quarantine',
            "no single-field DESCENDING index on sort_key",
        ),
        # A composite index no query needs.
        (
            EVENTS_BY_CORRELATION_NEWEST,
            "  sample_indexes = {",
            '  sample_indexes = {\n    stale = [["feed_tag", "ASCENDING"], ["sampled_at", "DESC"]]',
            "composite index samples[('feed_tag', 'ASCENDING'), ('sampled_at', 'DESC')] "
            "serves no query",
        ),
    ],
)
def test_firestore_index_check_fails_on(
    tmp_path: Path, shape: tfcheck.QueryShape, old: str, new: str, expected: str
) -> None:
    stack = mutated(tmp_path, "firestore.tf", old, new)
    problems = tfcheck.firestore_index_problems(stack, {shape})
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # An index on a field no query uses (the received_at/event_id shapes of old).
        (
            '["sort_key", "DESCENDING"]]\n    # events(correlation_id=..., newest_first',
            '["received_at", "DESCENDING"]]\n    # events(correlation_id=..., newest_first',
            "uses received_at, which no query filters or orders on",
        ),
        # A queried field exempt from indexing: events() without a filter fails.
        (
            'field = "sort_key", indexes = ["ASCENDING", "DESCENDING"] }\n    # Quarantine',
            'field = "sort_key", indexes = [] }\n    # Quarantine',
            "power_events.sort_key is exempt from indexing but a query uses it",
        ),
        # A single-field index kept on a field only ever read through sort_key.
        (
            'field = "received_at", indexes = []',
            'field = "received_at", indexes = ["ASCENDING"]',
            "power_events.received_at keeps single-field indexes no query uses",
        ),
        ('field      = "expires_at"', 'field      = "expiry"', "TTL on quarantine.expiry"),
    ],
)
def test_firestore_check_fails_on(tmp_path: Path, old: str, new: str, expected: str) -> None:
    problems = tfcheck.check_firestore(mutated(tmp_path, "firestore.tf", old, new))
    assert any(expected in p for p in problems), problems


def test_log_metrics_count_what_the_code_logs(stack: tfcheck.Stack) -> None:
    assert tfcheck.code_outcomes() == {
        *("accepted", "duplicate", "rejected", "invalid", "unauthorized", "too_large"),
        *("unsupported_media_type", "method_not_allowed", "store_unavailable"),
        *("internal_error", "reconcile_ok", "reconcile_failed", "drift"),
        *("teardown_ok", "teardown_incomplete", "episode_stalled"),
        *("sample_ok", "sample_failed"),
    }
    assert tfcheck.check_log_metrics(stack) == []
    counted = tfcheck.metric_outcomes(stack)
    assert counted["reconcile_failures"] == {"reconcile_failed", "teardown_incomplete"}
    assert counted["webhook_unauthorized"] == {"unauthorized"}
    assert counted["ramp_stalled"] == {"episode_stalled"}
    assert counted["sample_failures"] == {"sample_failed"}
    metrics = stack.locals()["counter_metrics"]
    assert tfcheck.filter_conditions(metrics["target_not_met"]["filter"]) == [
        ("outcome", "=", ["accepted"]),
        ("event", "=", ["end_ramp_down"]),
        ("compliant", "=", [False]),
    ]
    assert {"compliant", "event", "outcome", "feed_tag"} <= tfcheck.code_log_fields()
    # Both alert on their own policy.
    alerts = tfcheck._unquote(stack.texts["monitoring.tf"])
    for key in ("target_not_met", "ramp_stalled", "sample_failures"):
        assert f"    {key} = {{" in alerts, key


def test_filter_admits_what_the_filter_says() -> None:
    stack = tfcheck.load_stack()
    metrics = stack.locals()["counter_metrics"]
    not_met = metrics["target_not_met"]["filter"]
    line = {"outcome": "accepted", "event": "end_ramp_down", "compliant": False}
    assert tfcheck.filter_admits(not_met, line)
    assert not tfcheck.filter_admits(not_met, {**line, "compliant": True})
    assert not tfcheck.filter_admits(not_met, {**line, "outcome": "duplicate"})
    assert not tfcheck.filter_admits(not_met, {**line, "event": "start_ramp_down"})
    assert not tfcheck.filter_admits(not_met, {k: v for k, v in line.items() if k != "compliant"})
    failures = metrics["reconcile_failures"]["filter"]
    assert tfcheck.filter_admits(failures, {"outcome": "teardown_incomplete", "severity": "ERROR"})
    assert not tfcheck.filter_admits(failures, {"outcome": "reconcile_failed", "severity": "INFO"})
    rejected = metrics["webhook_rejected"]["filter"]
    assert tfcheck.filter_admits(rejected, {"outcome": "too_large"})
    assert not tfcheck.filter_admits(rejected, {"outcome": "accepted"})


def test_log_metric_check_fails_on_an_outcome_the_code_never_logs(tmp_path: Path) -> None:
    bad = mutated(
        tmp_path, "monitoring.tf", 'outcome=\\"unauthorized\\"', 'outcome=\\"unauthorised\\"'
    )
    problems = tfcheck.check_log_metrics(bad)
    assert (
        "metric webhook_unauthorized counts outcome 'unauthorised', which the code never logs"
        in (problems)
    )
    assert "no metric counts outcome 'unauthorized'" in problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'outcome=\\"episode_stalled\\"',
            'outcome=\\"ramp_stalled\\"',
            "no metric counts outcome 'episode_stalled'",
        ),
        (
            "jsonPayload.compliant=false",
            "jsonPayload.compliance=false",
            "metric target_not_met filters on jsonPayload.compliance, which no log line carries",
        ),
        (
            "jsonPayload.compliant=false",
            'jsonPayload.compliant=\\"false\\"',
            "metric target_not_met compares compliant with 'false'; it is logged as a boolean",
        ),
        (
            'event=\\"end_ramp_down\\"',
            'event=\\"ramp_down_end\\"',
            "metric target_not_met filters on event 'ramp_down_end', not a power event",
        ),
    ],
    ids=["stalled outcome", "compliant field", "compliant quoted", "event name"],
)
def test_log_metric_check_fails_on(tmp_path: Path, old: str, new: str, expected: str) -> None:
    problems = tfcheck.check_log_metrics(mutated(tmp_path, "monitoring.tf", old, new))
    assert any(expected in p for p in problems), problems


# ---------------------------------------------------------------------------------------
# The source archive
# ---------------------------------------------------------------------------------------


def test_archive_holds_the_code_schema_and_stubs(stack: tfcheck.Stack, tmp_path: Path) -> None:
    zip_path = tfcheck.build_archive(stack, tmp_path / "functions.zip")
    names = set(zipfile.ZipFile(zip_path).namelist())
    for required in (
        "main.py",
        "requirements.txt",
        "schemas/power-event.schema.json",
        "dpsapi/v1/nvgrid_pb2.py",
        "dpsapi/v1/nvgrid_pb2_grpc.py",
        "dpsapi/v1/auth_pb2.py",
        "gridhook/receiver.py",
        "gridhook/settings.py",
    ):
        assert required in names, f"{required} missing from the archive"
    assert json.loads(zipfile.ZipFile(zip_path).read("schemas/power-event.schema.json"))
    for name in names:
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
        assert ".egg-info" not in name and "/tests/" not in f"/{name}", name
    # The symlink is archived as the files it points to, not as a link.
    assert (tfcheck.FUNCTIONS / "schemas").is_symlink()


def test_exclude_globs_follow_doublestar() -> None:
    rx = tfcheck._glob_regex
    assert rx("**/__pycache__").match("__pycache__")
    assert rx("**/__pycache__").match("gridhook/store/__pycache__")
    assert rx("**/*.pyc").match("a/b/c.pyc")
    assert not rx("*.egg-info").match("a/b.egg-info")
    assert not rx("**/tests").match("gridhook/tests.py")


@pytest.fixture(scope="session")
def archive_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The archive unpacked, and a fresh venv (no system site-packages) with only
    functions/requirements.txt installed, as the Cloud Functions build does."""
    base = tmp_path_factory.mktemp("archive")
    src = base / "src"
    zip_path = tfcheck.build_archive(tfcheck.load_stack(), base / "functions.zip")
    zipfile.ZipFile(zip_path).extractall(src)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",  # compiled on import instead: half the install's time
            "--disable-pip-version-check",
            "-r",
            str(src / "requirements.txt"),
        ],
        check=True,
        env={**clean_env(bare=True), "PIP_NO_INPUT": "1"},
        timeout=600,
    )
    return src, python


@pytest.mark.slow
def test_archive_serves_a_webhook_in_a_clean_venv(
    stack: tfcheck.Stack, archive_venv: tuple[Path, Path], tmp_path: Path
) -> None:
    src, python = archive_venv
    tokens = tmp_path / "webhook-tokens"
    tokens.write_text(TEST_TOKEN + "\n")
    # The receiver's environment exactly as Terraform sets it (test values).
    values = {
        "GRIDHOOK_STORE": f"sqlite:///{tmp_path / 'events.db'}",
        "GRIDHOOK_WEBHOOK_TOKENS_FILE": str(tokens),
        "GRIDHOOK_ALLOW_UNAUTHENTICATED": "0",
        "GRIDHOOK_MAX_BODY_BYTES": "65536",
        "GRIDHOOK_QUARANTINE_TTL_DAYS": "7",
        "GRIDHOOK_STORE_TIMEOUT_SECONDS": "10",
        "GRIDHOOK_LOG_LEVEL": "INFO",
        "GRIDHOOK_WEBHOOK_TOKENS_RELOAD_SECONDS": "30",
        "GRIDHOOK_TIMEZONE": "UTC",
    }
    # A one-site deployment's: a fleet's gets GRIDHOOK_SITES instead of the time zone and
    # the token file (the sites name their own files).
    assert set(values) | {"GRIDHOOK_SITES"} == tfcheck.function_env(stack)["receive_power_event"]
    port = free_port()
    log = (tmp_path / "ff.log").open("wb")
    proc = subprocess.Popen(
        [
            str(python),
            "-m",
            "functions_framework",
            "--source",
            str(src / "main.py"),
            "--target",
            "receive_power_event",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=src,
        env=clean_env(bare=True, **values, PYTHONUNBUFFERED="1"),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            wait_for_port(port, 60, proc=proc)
        except Exception:
            pytest.fail((tmp_path / "ff.log").read_text(errors="replace"))
        url = f"http://127.0.0.1:{port}/nvgrid/webhook"
        auth = {"Authorization": f"Bearer {TEST_TOKEN}"}
        first = requests.post(url, json=SEED_PAYLOAD, headers=auth, timeout=30)
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "accepted"
        again = requests.post(url, json=SEED_PAYLOAD, headers=auth, timeout=30)
        assert again.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}
        assert requests.post(url, json=SEED_PAYLOAD, timeout=30).status_code == 401
    finally:
        stop_process_group(proc)
        log.close()


@pytest.mark.slow
def test_archive_job_entry_points_import_in_a_clean_venv(
    stack: tfcheck.Stack, archive_venv: tuple[Path, Path], tmp_path: Path
) -> None:
    src, python = archive_venv
    # The jobs' module ships in the archive (a missing one fails here, never skips).
    assert (src / "gridhook" / "jobs.py").is_file(), sorted(
        p.name for p in (src / "gridhook").iterdir()
    )
    tokens = tmp_path / "webhook-tokens"
    tokens.write_text(TEST_TOKEN)
    env = clean_env(
        bare=True,
        GRIDHOOK_STORE=f"sqlite:///{tmp_path / 'events.db'}",
        GRIDHOOK_WEBHOOK_TOKENS_FILE=str(tokens),
    )
    started = time.monotonic()
    proc = subprocess.run(
        [str(python), "-c", "import main, gridhook.jobs, grpc, dpsapi.v1.nvgrid_pb2_grpc"],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60
