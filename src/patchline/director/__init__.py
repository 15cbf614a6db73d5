"""The server side of decisions (Uptane's director), on top of the pure rules engine.

    catalog          releases and rules read from the database, reloaded on change
    releases_sync    the image repository's signed targets copied into the releases table
    answers          a decision per cohort, signed per device (``Director``)
    identity         the director's own trust root and keys
    yank             withdrawing a release from every process at once

``patchline.policy`` decides; this package feeds it from the store and the repository
and signs what it decides.
"""
