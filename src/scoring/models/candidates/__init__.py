"""The candidate plug-ins: one module each, registering itself (scoring.models.candidate).

A module here is found by the registry on first use; ``train.candidates`` in params.yaml
names the ones a run trains, and ``train.candidate_params.<name>`` holds their settings.
Modules import their libraries inside functions, so finding the plug-ins costs nothing.
"""
