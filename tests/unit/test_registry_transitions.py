import pytest

from ansible_collections.federation.platform.plugins.module_utils._registry import (
    STATES, TRANSITIONS, IllegalTransition, check_transition)


def test_every_state_has_its_transitions():
    assert set(TRANSITIONS) == set(STATES) | {None}
    for targets in TRANSITIONS.values():
        assert set(targets) <= set(STATES)


@pytest.mark.parametrize('current, target', [
    (None, 'requested'), ('requested', 'provisioning'), ('provisioning', 'active'), ('provisioning', 'failed'),
    ('failed', 'provisioning'), ('active', 'provisioning'), ('active', 'deprovisioning'),
    ('deprovisioning', 'deleted'), ('deleted', 'requested'), ('active', 'active'),
])
def test_legal_transitions(current, target):
    check_transition('finance', current, target)


@pytest.mark.parametrize('current, target', [
    (None, 'active'), ('requested', 'active'), ('active', 'requested'), ('deleted', 'active'),
    ('provisioning', 'deleted'), ('failed', 'active'), ('deprovisioning', 'active'),
])
def test_illegal_transitions_name_both_states(current, target):
    with pytest.raises(IllegalTransition) as exc:
        check_transition('finance', current, target)
    message = str(exc.value)
    assert "department 'finance'" in message
    assert '%s -> %s' % (current or '(not registered)', target) in message
