"""The registrar's bindings under RFC 3261 §10.3, with a numeric clock."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ivr.sip.registrar import (
    AddressOfRecord,
    Binding,
    BindingCreated,
    BindingRemoved,
    BindingUpdated,
    Contact,
    RegisterOutcome,
    RegisterResult,
    Registrar,
    Registration,
    Removal,
    Source,
    Transport,
)

AGENT = AddressOfRecord("sip:agent17@centre.example")
DESK = "sip:agent17@10.0.0.5:5060"
SOFTPHONE = "sip:agent17@10.0.0.9:5062;transport=tcp"
NAT = Source(host="198.51.100.7", port=40123, transport=Transport.UDP)


def register(
    registrar: Registrar,
    now: float,
    *contacts: Contact,
    call_id: str = "call-1",
    cseq: int = 1,
    expires: int | None = None,
    wildcard: bool = False,
    aor: AddressOfRecord = AGENT,
    source: Source = NAT,
) -> RegisterResult:
    return registrar.register(
        Registration(
            aor=aor,
            call_id=call_id,
            cseq=cseq,
            source=source,
            contacts=contacts,
            wildcard=wildcard,
            expires=expires,
        ),
        now,
    )


def uris(bindings: tuple[Binding, ...]) -> list[str]:
    return [b.uri for b in bindings]


def test_a_first_register_binds_the_contact_and_lists_it_in_the_200() -> None:
    registrar = Registrar()
    result = register(registrar, 100.0, Contact(uri=DESK), expires=1800)
    assert (result.outcome, result.status) == (RegisterOutcome.OK, 200)
    (binding,) = result.bindings
    assert binding.contact_value(100.0) == f"<{DESK}>;expires=1800"
    assert binding.expires_at == 1900.0
    assert [type(c) for c in result.changes] == [BindingCreated]
    assert registrar.locate(AGENT, 200.0) == binding


def test_the_binding_remembers_where_the_register_came_from_for_nat() -> None:
    registrar = Registrar()
    flow = Source(host="198.51.100.7", port=5061, transport=Transport.TLS, flow="conn-42")
    register(registrar, 0.0, Contact(uri="sip:agent17@192.168.1.20:5060"), source=flow)
    located = registrar.locate(AGENT, 1.0)
    assert located is not None and located.source == flow


def test_the_contact_expires_parameter_wins_over_the_expires_header() -> None:
    registrar = Registrar()
    result = register(registrar, 0.0, Contact(uri=DESK, expires=120), expires=900)
    assert result.bindings[0].remaining(0.0) == 120


def test_without_any_expires_the_default_applies() -> None:
    result = register(Registrar(default_expires=1200), 0.0, Contact(uri=DESK))
    assert result.bindings[0].remaining(0.0) == 1200


def test_a_long_expiry_is_shortened_to_the_maximum() -> None:
    result = register(Registrar(max_expires=3600), 0.0, Contact(uri=DESK), expires=2**40)
    assert result.bindings[0].remaining(0.0) == 3600


def test_too_brief_an_expiry_is_answered_423_with_min_expires_and_changes_nothing() -> None:
    registrar = Registrar(min_expires=60)
    register(registrar, 0.0, Contact(uri=DESK))
    result = register(registrar, 1.0, Contact(uri=SOFTPHONE), Contact(uri=DESK, expires=30), cseq=2)
    assert (result.outcome, result.status) == (RegisterOutcome.INTERVAL_TOO_BRIEF, 423)
    assert result.min_expires == 60
    assert uris(registrar.bindings(AGENT, 1.0)) == [DESK]


def test_remaining_seconds_count_down_in_the_200() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), expires=600)
    result = register(registrar, 250.5, cseq=2)  # a query: no contacts
    assert result.bindings[0].contact_value(250.5) == f"<{DESK}>;expires=350"


def test_a_query_lists_the_bindings_without_changing_them() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), Contact(uri=SOFTPHONE))
    result = register(registrar, 10.0, call_id="other", cseq=7)
    assert result.outcome is RegisterOutcome.OK
    assert sorted(uris(result.bindings)) == sorted([DESK, SOFTPHONE])
    assert result.changes == ()


def test_a_refresh_with_a_higher_cseq_extends_the_binding() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), expires=600, cseq=1)
    result = register(registrar, 500.0, Contact(uri=DESK), expires=600, cseq=2)
    (change,) = result.changes
    assert isinstance(change, BindingUpdated)
    assert (change.previous.expires_at, change.binding.expires_at) == (600.0, 1100.0)
    assert registrar.locate(AGENT, 1000.0) is not None


@pytest.mark.parametrize("cseq", [1, 4, 5])
def test_the_same_call_id_with_a_cseq_not_higher_is_refused_and_changes_nothing(
    cseq: int,
) -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), expires=600, cseq=5)
    result = register(registrar, 10.0, Contact(uri=DESK), expires=0, cseq=cseq)
    assert (result.outcome, result.status) == (RegisterOutcome.OUT_OF_ORDER, 400)
    assert uris(registrar.bindings(AGENT, 10.0)) == [DESK]


def test_a_different_call_id_replaces_the_binding_whatever_its_cseq() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), call_id="before-reboot", cseq=900)
    result = register(registrar, 10.0, Contact(uri=DESK), call_id="after-reboot", cseq=1)
    assert result.outcome is RegisterOutcome.OK
    (binding,) = result.bindings
    assert (binding.call_id, binding.cseq) == ("after-reboot", 1)


def test_an_out_of_order_contact_aborts_the_whole_request() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), cseq=5)
    result = register(registrar, 1.0, Contact(uri=SOFTPHONE), Contact(uri=DESK), cseq=3)
    assert result.outcome is RegisterOutcome.OUT_OF_ORDER
    assert uris(registrar.bindings(AGENT, 1.0)) == [DESK]


def test_expires_zero_removes_the_binding() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), Contact(uri=SOFTPHONE))
    result = register(registrar, 5.0, Contact(uri=DESK, expires=0), cseq=2)
    assert uris(result.bindings) == [SOFTPHONE]
    (removed,) = result.changes
    assert isinstance(removed, BindingRemoved) and removed.reason is Removal.UNREGISTERED


def test_unregistering_an_unknown_contact_is_harmless() -> None:
    result = register(Registrar(), 0.0, Contact(uri=DESK), expires=0)
    assert (result.outcome, result.bindings, result.changes) == (RegisterOutcome.OK, (), ())


def test_the_wildcard_with_expires_zero_removes_every_binding() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), Contact(uri=SOFTPHONE))
    result = register(registrar, 5.0, wildcard=True, expires=0, cseq=2)
    assert result.outcome is RegisterOutcome.OK and result.bindings == ()
    assert {c.reason for c in result.changes if isinstance(c, BindingRemoved)} == {
        Removal.UNREGISTERED
    }
    assert len(result.changes) == 2
    assert registrar.locate(AGENT, 5.0) is None and len(registrar) == 0


def test_the_wildcard_respects_the_cseq_of_bindings_from_the_same_call_id() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), cseq=10)
    result = register(registrar, 1.0, wildcard=True, expires=0, cseq=10)
    assert result.outcome is RegisterOutcome.OUT_OF_ORDER
    assert len(registrar) == 1


@pytest.mark.parametrize(
    ("registration", "detail"),
    [
        ({"wildcard": True, "expires": 3600}, "'*' needs Expires: 0"),
        ({"wildcard": True}, "'*' needs Expires: 0"),
        ({"wildcard": True, "expires": 0, "contacts": (Contact(uri=DESK),)}, "'*' must be"),
        ({"contacts": (Contact(uri=DESK, q=1.5),)}, "q outside"),
        ({"contacts": (Contact(uri=DESK, expires=-1),)}, "negative expires"),
        ({"expires": -5}, "negative Expires"),
        ({"cseq": 2**31}, "CSeq"),
        ({"contacts": (Contact(uri="sip:a@b>;x"),)}, "unusable contact"),
        ({"contacts": (Contact(uri=""),)}, "unusable contact"),
    ],
)
def test_a_malformed_register_is_a_bad_request(
    registration: dict[str, object], detail: str
) -> None:
    registrar = Registrar()
    request = replace(Registration(aor=AGENT, call_id="c", cseq=1, source=NAT), **registration)  # type: ignore[arg-type]
    result = registrar.register(request, 0.0)
    assert (result.outcome, result.status) == (RegisterOutcome.BAD_REQUEST, 400)
    assert detail in result.detail


def test_bindings_lapse_when_their_time_comes() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK, expires=100), Contact(uri=SOFTPHONE, expires=300))
    assert registrar.next_deadline() == 100.0
    assert registrar.expire(99.9) == []
    (gone,) = registrar.expire(100.0)
    assert (gone.binding.uri, gone.reason, gone.at) == (DESK, Removal.EXPIRED, 100.0)
    assert registrar.next_deadline() == 300.0
    registrar.expire(1000.0)
    assert registrar.next_deadline() is None and len(registrar) == 0


def test_a_refresh_moves_the_deadline() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), expires=100)
    register(registrar, 90.0, Contact(uri=DESK), expires=100, cseq=2)
    assert registrar.next_deadline() == 190.0
    assert registrar.expire(100.0) == []


def test_a_lapsed_binding_is_never_located_even_before_expire_runs() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK), expires=100)
    assert registrar.locate(AGENT, 100.0) is None
    result = register(registrar, 150.0, cseq=2)
    assert result.bindings == ()
    assert [c.reason for c in result.changes if isinstance(c, BindingRemoved)] == [Removal.EXPIRED]


def test_the_best_binding_is_the_highest_q_then_the_most_recent() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri=DESK, q=0.5), call_id="desk")
    register(registrar, 10.0, Contact(uri=SOFTPHONE, q=0.5), call_id="soft")
    located = registrar.locate(AGENT, 20.0)
    assert located is not None and located.uri == SOFTPHONE
    register(registrar, 30.0, Contact(uri=DESK, q=0.9), call_id="desk", cseq=2)
    located = registrar.locate(AGENT, 40.0)
    assert located is not None and located.uri == DESK
    assert uris(registrar.bindings(AGENT, 40.0)) == [DESK, SOFTPHONE]


def test_a_contact_without_q_ranks_as_q_1() -> None:
    registrar = Registrar()
    register(registrar, 10.0, Contact(uri=DESK, q=0.9), call_id="a")
    register(registrar, 0.0, Contact(uri=SOFTPHONE), call_id="b")
    assert uris(registrar.bindings(AGENT, 20.0)) == [SOFTPHONE, DESK]


def test_a_phone_back_on_a_new_address_with_its_instance_id_replaces_its_old_binding() -> None:
    registrar = Registrar()
    instance = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"
    register(registrar, 0.0, Contact(uri=DESK, instance=instance, reg_id=1), call_id="a")
    result = register(
        registrar,
        50.0,
        Contact(uri="sip:agent17@10.0.0.77:5060", instance=instance.lower(), reg_id=1),
        call_id="b",
    )
    assert uris(result.bindings) == ["sip:agent17@10.0.0.77:5060"]
    (change,) = result.changes
    assert isinstance(change, BindingUpdated) and change.previous.uri == DESK


def test_the_same_instance_with_another_reg_id_is_another_flow() -> None:
    registrar = Registrar()
    instance = "<urn:uuid:1>"
    register(
        registrar,
        0.0,
        Contact(uri=DESK, instance=instance, reg_id=1),
        Contact(uri=SOFTPHONE, instance=instance, reg_id=2),
    )
    assert len(registrar.bindings(AGENT, 1.0)) == 2


def test_contact_uris_match_with_scheme_and_host_case_folded() -> None:
    registrar = Registrar()
    register(registrar, 0.0, Contact(uri="sip:agent17@PHONE.example:5060"))
    result = register(registrar, 1.0, Contact(uri="SIP:agent17@phone.EXAMPLE:5060"), cseq=2)
    assert len(result.bindings) == 1


def test_the_200_lists_q_instance_and_reg_id() -> None:
    registrar = Registrar()
    result = register(
        registrar, 0.0, Contact(uri=DESK, q=0.25, instance="<urn:uuid:9>", reg_id=2), expires=60
    )
    assert result.bindings[0].contact_value(0.0) == (
        f'<{DESK}>;expires=60;q=0.25;+sip.instance="<urn:uuid:9>";reg-id=2'
    )


def test_past_the_limit_the_least_recently_refreshed_binding_is_evicted() -> None:
    registrar = Registrar(max_bindings_per_aor=2)
    register(registrar, 0.0, Contact(uri="sip:a@10.0.0.1:5001"), call_id="1")
    register(registrar, 1.0, Contact(uri="sip:a@10.0.0.1:5002"), call_id="2")
    register(registrar, 2.0, Contact(uri="sip:a@10.0.0.1:5001"), call_id="1", cseq=2)
    result = register(registrar, 3.0, Contact(uri="sip:a@10.0.0.1:5003"), call_id="3")
    assert sorted(uris(result.bindings)) == ["sip:a@10.0.0.1:5001", "sip:a@10.0.0.1:5003"]
    evicted = [c for c in result.changes if isinstance(c, BindingRemoved)]
    assert [(c.binding.uri, c.reason) for c in evicted] == [
        ("sip:a@10.0.0.1:5002", Removal.EVICTED)
    ]


def test_one_request_asking_for_more_bindings_than_allowed_is_forbidden() -> None:
    registrar = Registrar(max_bindings_per_aor=2)
    contacts = [Contact(uri=f"sip:a@10.0.0.1:{5000 + i}") for i in range(3)]
    result = register(registrar, 0.0, *contacts)
    assert (result.outcome, result.status) == (RegisterOutcome.TOO_MANY_CONTACTS, 403)
    assert len(registrar) == 0


def test_addresses_of_record_are_independent() -> None:
    registrar = Registrar()
    other = AddressOfRecord("sip:agent18@centre.example")
    register(registrar, 0.0, Contact(uri=DESK))
    register(registrar, 0.0, Contact(uri="sip:agent18@10.0.0.6"), aor=other)
    register(registrar, 1.0, wildcard=True, expires=0, cseq=2)
    assert registrar.locate(AGENT, 2.0) is None
    assert registrar.locate(other, 2.0) is not None


@pytest.mark.parametrize(
    "options",
    [
        {"min_expires": 0},
        {"min_expires": 600, "default_expires": 300},
        {"default_expires": 7200, "max_expires": 3600},
        {"max_bindings_per_aor": 0},
    ],
)
def test_a_misconfigured_registrar_fails_at_construction(options: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Registrar(**options)


# -- invariants over random sequences -----------------------------------------

_AORS = [AddressOfRecord(f"sip:agent{i}@centre.example") for i in range(3)]
_URIS = [f"sip:phone@10.0.0.{i}" for i in range(4)]
_INSTANCES = [None, None, "<urn:uuid:a>", "<urn:uuid:b>"]


class RegistrarMachine(RuleBasedStateMachine):
    """Registers, refreshes, removals and time passing, checked against the registrar's promises."""

    def __init__(self) -> None:
        super().__init__()
        self.registrar = Registrar(
            min_expires=10, default_expires=300, max_expires=500, max_bindings_per_aor=3
        )
        self.now = 0.0
        self.cseqs: dict[str, int] = {}

    @rule(
        aor=st.sampled_from(_AORS),
        call_id=st.sampled_from(["x", "y", "z"]),
        cseq_step=st.integers(min_value=-1, max_value=2),
        contacts=st.lists(
            st.builds(
                Contact,
                uri=st.sampled_from(_URIS),
                expires=st.none() | st.integers(min_value=0, max_value=1000),
                q=st.none() | st.sampled_from([0.0, 0.5, 1.0]),
                instance=st.sampled_from(_INSTANCES),
                reg_id=st.none() | st.just(1),
            ),
            max_size=4,
        ),
        expires=st.none() | st.integers(min_value=0, max_value=1000),
        wildcard=st.booleans(),
    )
    def register(
        self,
        aor: AddressOfRecord,
        call_id: str,
        cseq_step: int,
        contacts: list[Contact],
        expires: int | None,
        wildcard: bool,
    ) -> None:
        cseq = max(0, self.cseqs.get(call_id, 0) + cseq_step)
        self.cseqs[call_id] = cseq
        before = self.registrar.bindings(aor, self.now)
        result = self.registrar.register(
            Registration(
                aor=aor,
                call_id=call_id,
                cseq=cseq,
                source=NAT,
                contacts=() if wildcard else tuple(contacts),
                wildcard=wildcard,
                expires=0 if wildcard else expires,
            ),
            self.now,
        )
        if result.outcome is RegisterOutcome.OK:
            assert result.bindings == self.registrar.bindings(aor, self.now)
            for binding in result.bindings:
                assert 1 <= binding.remaining(self.now) <= 500
        else:
            assert self.registrar.bindings(aor, self.now) == before

    @rule(seconds=st.floats(min_value=0, max_value=400))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        for removed in self.registrar.expire(self.now):
            assert removed.binding.expires_at <= self.now

    @invariant()
    def bindings_are_live_bounded_and_ranked(self) -> None:
        total = 0
        for aor in _AORS:
            bindings = self.registrar.bindings(aor, self.now)
            assert len(bindings) <= 3
            assert all(b.expires_at > self.now and b.aor == aor for b in bindings)
            ranks = [(-(1.0 if b.q is None else b.q), -b.updated_at) for b in bindings]
            assert ranks == sorted(ranks)
            total += len(bindings)
        assert total <= len(self.registrar)

    @invariant()
    def the_next_deadline_is_the_earliest_expiry(self) -> None:
        deadline = self.registrar.next_deadline()
        stored = [b.expires_at for aor in _AORS for b in self.registrar.bindings(aor, -1e9)]
        assert deadline == (min(stored) if stored else None)


RegistrarMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None
)
TestRegistrarInvariants = RegistrarMachine.TestCase
