"""Catalogue: products and regions as loaded from config/, single lookups, pagination."""
from __future__ import annotations

import pytest

import impactd_harness as h
from impactd_harness import CATALOG_PRODUCTS, CATALOG_REGIONS, assert_problem

PRODUCTS = {p["id"]: p for p in CATALOG_PRODUCTS}
REGIONS = {r["code"]: r for r in CATALOG_REGIONS}


@pytest.fixture
def pub(module_daemon) -> h.Api:
    return h.api(module_daemon)


def walk(a: h.Api, path: str, limit: int | None, max_pages: int = 100, params: dict | None = None):
    """Follows next_cursor; returns (pages, items)."""
    pages, items = [], []
    cursor = None
    for _ in range(max_pages):
        q = dict(params or {})
        if limit is not None:
            q["limit"] = limit
        if cursor is not None:
            q["cursor"] = cursor
        r = a.get(path, params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) >= {"items", "next_cursor"}, body
        pages.append(body["items"])
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages, items
        assert isinstance(cursor, str) and cursor, body
    pytest.fail(f"{path}: more than {max_pages} pages")


# ------------------------------------------------------------------ products

def test_products_match_the_catalogue_file(pub):
    r = pub.get("/v1/catalog/products")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["next_cursor"] is None          # 19 < default limit 50
    items = body["items"]
    assert len(items) == 19 == len(PRODUCTS)
    assert len({p["id"] for p in items}) == 19
    for p in items:
        want = PRODUCTS[p["id"]]
        for key in ("name", "name_fr", "category", "unit"):
            assert p[key] == want[key], (p["id"], key, p[key], want[key])
        assert p.get("serves") == want.get("serves"), p
        if "nominal_volume_ml" in want:
            assert p["nominal_volume_ml"] == want["nominal_volume_ml"], p


def test_product_categories_and_units(pub):
    items = pub.get("/v1/catalog/products").json()["items"]
    by_cat: dict[str, set] = {}
    for p in items:
        by_cat.setdefault(p["category"], set()).add(p["id"])
    assert set(by_cat) == {"raw_material", "packaging", "finished_good", "capacity"}
    assert len(by_cat["raw_material"]) == 6
    assert len(by_cat["packaging"]) == 9
    assert by_cat["finished_good"] == {"hydroalcoholic-gel", "hand-rub-solution"}
    assert by_cat["capacity"] == {"gel-production-capacity", "hand-rub-production-capacity"}
    units = {p["id"]: p["unit"] for p in items}
    assert units["carbomer"] == "kg"
    assert units["ethanol-96"] == "L"
    assert units["bottle-500ml"] == "unit"
    assert units["gel-production-capacity"] == "L"
    serves = {p["id"]: p.get("serves") for p in items if p["category"] == "capacity"}
    assert serves == {"gel-production-capacity": "hydroalcoholic-gel",
                      "hand-rub-production-capacity": "hand-rub-solution"}


@pytest.mark.parametrize("category,count", [("raw_material", 6), ("packaging", 9), ("finished_good", 2),
                                            ("capacity", 2)])
def test_products_filter_by_category(pub, category, count):
    _, items = walk(pub, "/v1/catalog/products", None, params={"category": category})
    assert len(items) == count
    assert all(p["category"] == category for p in items)


def test_products_unknown_category_filter_is_422(pub):
    assert_problem(pub.get("/v1/catalog/products", params={"category": "spaceship"}), 422, field="category")


@pytest.mark.parametrize("pid", ["ethanol-96", "carbomer", "bottle-100ml", "gel-production-capacity"])
def test_single_product(pub, pid):
    r = pub.get(f"/v1/catalog/products/{pid}")
    assert r.status_code == 200, r.text
    p = r.json()
    want = PRODUCTS[pid]
    assert p["id"] == pid
    assert (p["category"], p["unit"], p["name"]) == (want["category"], want["unit"], want["name"])


@pytest.mark.parametrize("pid", ["nope", "ETHANOL-96", "ethanol-96x", "ethanol"])
def test_unknown_product_is_404(pub, pid):
    assert_problem(pub.get(f"/v1/catalog/products/{pid}"), 404)


# ------------------------------------------------------------------ regions

def test_regions_match_the_catalogue_file(pub):
    body = pub.get("/v1/catalog/regions").json()
    assert body["next_cursor"] is None
    items = body["items"]
    assert len(items) == 18
    assert {r["code"] for r in items} == set(REGIONS)
    for r in items:
        want = REGIONS[r["code"]]
        assert r["name"] == want["name"]
        assert r["capital"] == want["capital"]
        assert r["overseas"] is want["overseas"]
        assert r["ars"] == want["ars"]
        assert r["lat"] == pytest.approx(want["lat"]) and r["lon"] == pytest.approx(want["lon"])
        assert sorted(r["neighbours"]) == sorted(want["neighbours"]), r["code"]


def test_region_neighbours_are_symmetric_and_known(pub):
    items = pub.get("/v1/catalog/regions").json()["items"]
    nb = {r["code"]: set(r["neighbours"]) for r in items}
    for code, ns in nb.items():
        assert code not in ns
        for n in ns:
            assert n in nb, f"{code} borders unknown {n}"
            assert code in nb[n], f"{code} borders {n} but not the reverse"
    for r in items:
        if r["overseas"] or r["code"] == "94":
            assert r["neighbours"] == [], r
    assert nb["11"] == {"24", "27", "28", "32", "44"}


def test_region_codes_keep_leading_zero(pub):
    codes = {r["code"] for r in pub.get("/v1/catalog/regions").json()["items"]}
    assert {"01", "02", "03", "04", "06"} <= codes
    assert all(isinstance(c, str) for c in codes)


@pytest.mark.parametrize("code", ["11", "01", "94", "93"])
def test_single_region(pub, code):
    r = pub.get(f"/v1/catalog/regions/{code}")
    assert r.status_code == 200, r.text
    assert r.json()["code"] == code
    assert r.json()["name"] == REGIONS[code]["name"]


@pytest.mark.parametrize("code", ["99", "1", "011", "ile-de-france"])
def test_unknown_region_is_404(pub, code):
    assert_problem(pub.get(f"/v1/catalog/regions/{code}"), 404)


# ------------------------------------------------------------------ pagination

@pytest.mark.parametrize("path,total,key", [("/v1/catalog/products", 19, "id"),
                                            ("/v1/catalog/regions", 18, "code")])
def test_limit_5_paginates_every_item_exactly_once(pub, path, total, key):
    pages, items = walk(pub, path, 5)
    sizes = [len(p) for p in pages]
    assert sizes == [5] * (total // 5) + ([total % 5] if total % 5 else []), sizes
    ids = [i[key] for i in items]
    assert len(ids) == len(set(ids)) == total
    want = set(PRODUCTS) if key == "id" else set(REGIONS)
    assert set(ids) == want


@pytest.mark.parametrize("path", ["/v1/catalog/products", "/v1/catalog/regions"])
def test_pagination_is_stable(pub, path):
    _, a = walk(pub, path, 5)
    _, b = walk(pub, path, 7)
    _, c = walk(pub, path, 500)
    assert a == b == c


def test_limit_1_and_500_are_accepted(pub):
    r = pub.get("/v1/catalog/regions", params={"limit": 1})
    assert r.status_code == 200 and len(r.json()["items"]) == 1 and r.json()["next_cursor"]
    r = pub.get("/v1/catalog/regions", params={"limit": 500})
    assert r.status_code == 200 and len(r.json()["items"]) == 18 and r.json()["next_cursor"] is None


@pytest.mark.parametrize("path", ["/v1/catalog/products", "/v1/catalog/regions"])
@pytest.mark.parametrize("limit", ["0", "501", "abc", "-1", "", "5.5", "1e2"])
def test_bad_limit_is_422(pub, path, limit):
    assert_problem(pub.get(path, params={"limit": limit}), 422, field="limit")


@pytest.mark.parametrize("cursor", ["garbage", "!!!"])
def test_bad_cursor_is_rejected(pub, cursor):
    r = pub.get("/v1/catalog/products", params={"limit": 5, "cursor": cursor})
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)
