"""The two-person rule: changes held as proposals until a second person approves them.

patchline.actions.Action                         the actions that can be held
gate.hold(session, required, action, ...)         the one call that holds one
service.needs_second_person(required, action)    whether the settings hold one
service.propose(session, action, payload, ...)   store a proposal (audit entry, event)
service.approve(session, id, approver, ...)      apply it through its applier
service.reject(session, id, who, reason, now)    close it unapplied
appliers.APPLIERS                                what applying each action means
"""
