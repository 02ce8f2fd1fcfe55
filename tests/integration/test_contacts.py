"""Participants' contact, language and identifiers (docs/api.md, "Participants"): set on
creation or by PATCH (admin or self), every member checked with a field error naming it
(contact.email, identifiers.siret, ...); the contact reaches the other side of an allocation
(need_party / offer_party)."""
from __future__ import annotations

import pytest

import impactd_harness as h
from impactd_harness import assert_problem
from model import World

GEL = "hydroalcoholic-gel"
CONTACT = {"name": "Claire Martin", "email": "achats@chu-exemple.fr", "phone": "+33320445962"}
SIRET = "73282932000074"      # a valid SIRET (Luhn)


def fields_of(r) -> set[str]:
    return {e["field"] for e in r.json()["errors"]}


def test_create_and_patch_contact_language_identifiers(impactd):
    w = World(impactd())
    m = w.manufacturer("11", contact=CONTACT, language="en", identifiers={"siret": SIRET})
    got = w.admin.get_ok(f"/v1/participants/{m.id}")
    assert (got["contact"], got["language"], got["identifiers"]) == (CONTACT, "en", {"siret": SIRET})
    hosp = w.hospital("11")
    assert hosp.get_ok(f"/v1/participants/{hosp.id}")["language"] == "fr"     # the default
    r = hosp.api.patch(f"/v1/participants/{hosp.id}",
                       json={"contact": {"name": "Pharmacie", "email": "pui@chu.fr"},
                             "identifiers": {"finess": "590780193"}, "language": "en"})
    assert r.status_code == 200, r.text
    got = hosp.get_ok(f"/v1/me")
    assert got["contact"] == {"name": "Pharmacie", "email": "pui@chu.fr"}
    assert got["identifiers"] == {"finess": "590780193"} and got["language"] == "en"
    # the other side sees whom to call
    m.offer(GEL, 5)
    _, allocs = hosp.need(GEL, 5, "stat")
    assert allocs[0]["offer_party"]["contact"] == CONTACT
    assert allocs[0]["need_party"]["contact"] == {"name": "Pharmacie", "email": "pui@chu.fr"}
    assert m.get_ok(f"/v1/participants/{hosp.id}")["contact"]["email"] == "pui@chu.fr"


@pytest.mark.parametrize("body,field", [
    ({"contact": {"name": "A", "email": "not-an-email"}}, "contact.email"),
    ({"contact": {"name": "A", "email": "a@b"}}, "contact.email"),
    ({"contact": {"email": "a@b.fr"}}, "contact.name"),
    ({"contact": {"name": "A", "email": "a@b.fr", "phone": "0320445962"}}, "contact.phone"),
    ({"contact": {"name": "A", "email": "a@b.fr", "phone": "+33 3 20"}}, "contact.phone"),
    ({"contact": {"name": "A", "email": "a@b.fr", "fax": "x"}}, "contact.fax"),
    ({"contact": "claire@chu.fr"}, "contact"),
    ({"identifiers": {"siret": "73282932000075"}}, "identifiers.siret"),   # Luhn fails
    ({"identifiers": {"siret": "7328293200007"}}, "identifiers.siret"),
    ({"identifiers": {"finess": "59078019"}}, "identifiers.finess"),
    ({"identifiers": {"finess": "2C0000001"}}, "identifiers.finess"),
    ({"identifiers": {"vat": "FR1"}}, "identifiers.vat"),
    ({"language": "de"}, "language"),
])
def test_each_bad_member_is_a_field_error(impactd, body, field):
    d = impactd()
    w = World(d)
    hosp = w.hospital("11")
    r = hosp.api.patch(f"/v1/participants/{hosp.id}", json=body)
    assert_problem(r, 422)
    assert field in fields_of(r), r.text
    r = h.api(d, d.admin_token).post("/v1/participants", json={"role": "hospital",
                                                               "name": "x", "region": "11", **body})
    assert_problem(r, 422)
    assert field in fields_of(r), r.text


def test_corsica_finess_is_accepted(impactd):
    w = World(impactd())
    hosp = w.hospital("94", identifiers={"finess": "2A0000018"})
    assert hosp.get_ok("/v1/me")["identifiers"] == {"finess": "2A0000018"}
