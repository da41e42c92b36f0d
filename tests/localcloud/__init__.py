"""deckhand's local cloud: emulated AWS (moto 5.2.5 plus what deckhand needs) that
runs the project's real Lambda functions and state machine.

    from tests.localcloud import start_local_cloud
    cloud = start_local_cloud(port=0, params={...}, build=False)
    cloud.client("stepfunctions").list_state_machines()
    cloud.stop()

or ``scripts/localcloud up --port N``. See server.py for the pieces.
"""

from .server import LocalCloud, start_local_cloud

__all__ = ["LocalCloud", "start_local_cloud"]
