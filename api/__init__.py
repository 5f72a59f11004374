"""kimflow's interfaces: thin adapters that turn people's requests into engine calls.

``api.cli`` is the command line (``kimflow``). Nothing here holds business rules;
every decision is the engine's, and every engine refusal is shown, not worked around.
"""
