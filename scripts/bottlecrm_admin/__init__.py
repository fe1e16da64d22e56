"""BottleCRM's Django admin as a screen onto the demo's organisation, for a person beside the demo.

Loaded into the BottleCRM process that `scripts/bottlecrm.sh` runs (its settings are `settings.py`
here), never into Countersign. BottleCRM keeps each organisation's rows behind PostgreSQL row-level
security and its admin sets no organisation, so out of the box the admin lists no contact and no
case, and its cases have no admin page at all: this adds one and lets a staff user's admin requests
see the organisation named by BOTTLECRM_ADMIN_ORG ("Countersign demo", the one `setup` creates).
"""
