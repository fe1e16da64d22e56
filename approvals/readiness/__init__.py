"""Readiness before release: the map of what each workflow touches, the checks computed from facts,
stage and prompt-version promotion held until they pass, the five-step review and the trace drill."""
