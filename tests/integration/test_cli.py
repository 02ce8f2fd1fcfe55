"""Command line: --help, --version, --check-config, bad settings, bad catalogue files."""
from __future__ import annotations

import json
import re
import shutil

import pytest

import impactd_harness as h


@pytest.fixture(autouse=True)
def _binary():
    if not h.IMPACTD_BIN.exists():
        pytest.fail(f"impactd binary not found at {h.IMPACTD_BIN}", pytrace=False)


def base_env(tmp_path, **extra):
    env = {
        "IMPACTD_LISTEN": f"127.0.0.1:{h.free_port()}",
        # Nothing listens there: the CLI paths must not need Redis.
        "IMPACTD_REDIS_URL": f"redis://127.0.0.1:{h.free_port()}/0",
        "IMPACTD_ADMIN_TOKEN": "adm_cli_test_token_0123456789",
        "IMPACTD_DATA_DIR": str(tmp_path / "data"),
        "IMPACTD_RATE_LIMIT": "0",
        "IMPACTD_LOG_LEVEL": "debug",
        "IMPACTD_KEY_PREFIX": "impact:",
    }
    (tmp_path / "data").mkdir(exist_ok=True)
    env.update(extra)
    return env


def project_version() -> str:
    m = re.search(r"version\s*:\s*'([^']+)'", (h.REPO / "meson.build").read_text())
    assert m, "no version in meson.build"
    return m.group(1)


def describe(p) -> str:
    return f"exit {p.returncode}\n--- stdout\n{p.stdout[-3000:]}\n--- stderr\n{p.stderr[-3000:]}"


def test_help_exits_0_and_documents_options(tmp_path):
    p = h.run_impactd(["--help"], base_env(tmp_path))
    assert p.returncode == 0, describe(p)
    assert "--config" in p.stdout, describe(p)
    assert "--check-config" in p.stdout and "--version" in p.stdout, describe(p)


def test_version_exits_0_and_prints_the_project_version(tmp_path):
    p = h.run_impactd(["--version"], base_env(tmp_path))
    assert p.returncode == 0, describe(p)
    assert project_version() in p.stdout, describe(p)


def test_unknown_option_exits_non_zero(tmp_path):
    p = h.run_impactd(["--no-such-option"], base_env(tmp_path))
    assert p.returncode != 0, describe(p)
    assert p.stderr.strip(), "an unknown option should be explained on stderr"


def test_check_config_accepts_the_shipped_config(tmp_path):
    assert h.CONFIG_FILE.exists(), f"{h.CONFIG_FILE} is missing"
    p = h.run_impactd(["--config", str(h.CONFIG_FILE), "--check-config"], base_env(tmp_path))
    assert p.returncode == 0, describe(p)


def test_check_config_accepts_a_comment_only_file(tmp_path):
    conf = tmp_path / "empty.conf"
    conf.write_text("# nothing set: every default applies\n\n")
    p = h.run_impactd(["--config", str(conf), "--check-config"], base_env(tmp_path))
    assert p.returncode == 0, describe(p)


def test_check_config_rejects_unknown_key_and_names_the_file(tmp_path):
    conf = tmp_path / "bad-key.conf"
    shipped = h.CONFIG_FILE.read_text() if h.CONFIG_FILE.exists() else ""
    conf.write_text(shipped + "\nno_such_setting_xyz = 1\n")
    p = h.run_impactd(["--config", str(conf), "--check-config"], base_env(tmp_path))
    assert p.returncode != 0, describe(p)
    assert str(conf) in p.stderr or conf.name in p.stderr, describe(p)
    assert "no_such_setting_xyz" in p.stderr, describe(p)


def test_missing_config_file_is_an_error(tmp_path):
    p = h.run_impactd(["--config", str(tmp_path / "nope.conf"), "--check-config"], base_env(tmp_path))
    assert p.returncode != 0, describe(p)
    assert "nope.conf" in p.stderr, describe(p)


@pytest.mark.parametrize("var,value", [
    ("IMPACTD_LISTEN", "nonsense"),
    ("IMPACTD_LISTEN", "127.0.0.1:99999"),
    ("IMPACTD_REDIS_URL", "ftp://127.0.0.1:6379/0"),
    ("IMPACTD_RATE_LIMIT", "lots"),
    ("IMPACTD_LOG_LEVEL", "chatty"),
    ("IMPACTD_WEBHOOK_RETRY_SCHEDULE", "0s,soon"),
])
def test_check_config_rejects_bad_environment_value(tmp_path, var, value):
    p = h.run_impactd(["--config", str(h.CONFIG_FILE), "--check-config"], base_env(tmp_path, **{var: value}))
    assert p.returncode != 0, describe(p)
    assert var in p.stderr, f"the message should name {var}\n{describe(p)}"


def test_daemon_refuses_to_start_with_bad_listen(tmp_path):
    env = base_env(tmp_path, IMPACTD_LISTEN="nonsense")
    p = h.run_impactd(["--config", str(h.CONFIG_FILE)], env, timeout=10)
    assert p.returncode != 0, describe(p)
    assert "IMPACTD_LISTEN" in p.stderr, describe(p)


def _catalog_copy(tmp_path):
    d = tmp_path / "catalog"
    d.mkdir()
    shutil.copy(h.CATALOG_DIR / "products.json", d / "products.json")
    shutil.copy(h.CATALOG_DIR / "regions.json", d / "regions.json")
    shutil.copy(h.CATALOG_DIR / "departements.json", d / "departements.json")
    return d


def _start_expecting_failure(tmp_path, catalog_dir):
    env = base_env(tmp_path, IMPACTD_CATALOG_DIR=str(catalog_dir))
    return h.run_impactd(["--config", str(h.CONFIG_FILE)], env, timeout=10)


def test_invalid_json_products_file_fails_start_naming_the_file(tmp_path):
    d = _catalog_copy(tmp_path)
    (d / "products.json").write_text('{"products": [ {"id": "x", ')
    p = _start_expecting_failure(tmp_path, d)
    assert p.returncode != 0, describe(p)
    assert "products.json" in p.stderr, describe(p)


def test_unknown_category_fails_start_naming_the_file(tmp_path):
    d = _catalog_copy(tmp_path)
    doc = json.loads((d / "products.json").read_text())
    doc["products"][0]["category"] = "spaceship"
    (d / "products.json").write_text(json.dumps(doc))
    p = _start_expecting_failure(tmp_path, d)
    assert p.returncode != 0, describe(p)
    assert "products.json" in p.stderr, describe(p)


def test_invalid_regions_file_fails_start_naming_the_file(tmp_path):
    d = _catalog_copy(tmp_path)
    (d / "regions.json").write_text("[1, 2,")
    p = _start_expecting_failure(tmp_path, d)
    assert p.returncode != 0, describe(p)
    assert "regions.json" in p.stderr, describe(p)


def test_missing_catalogue_dir_fails_start(tmp_path):
    p = _start_expecting_failure(tmp_path, tmp_path / "no-such-dir")
    assert p.returncode != 0, describe(p)
    assert "no-such-dir" in p.stderr, describe(p)


def test_catalogue_dir_override_is_served(tmp_path, impactd):
    d = _catalog_copy(tmp_path)
    doc = json.loads((d / "products.json").read_text())
    doc["products"] = [p for p in doc["products"] if p["category"] == "finished_good"]
    assert len(doc["products"]) == 2
    (d / "products.json").write_text(json.dumps(doc))
    daemon = impactd(env={"IMPACTD_CATALOG_DIR": str(d)})
    r = h.api(daemon).get("/v1/catalog/products")
    assert r.status_code == 200, r.text
    assert sorted(p["id"] for p in r.json()["items"]) == ["hand-rub-solution", "hydroalcoholic-gel"]
