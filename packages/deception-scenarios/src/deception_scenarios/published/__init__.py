"""The field's deception datasets, read in their published formats (never shipped here).

Each set is a registered plugin: the off-policy sets (given texts with labels) are statement sets
for ``deception capture NAME --param path=FILE``, and the on-policy role play is the scenario
``roleplaying`` that ``deception run`` plays. ``sources`` names where each set's data comes from.
Nothing here imports ``datasets`` or ``pyarrow`` until a set is read.
"""
