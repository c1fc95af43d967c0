"""The few ``keras.backend`` functions a Keras script calls: clear_session, floatx."""
from .layers.base import reset_name_uids

__all__ = ["clear_session", "floatx"]


def clear_session():
    """Forget the automatic layer names, so the next model starts at 'dense', 'lstm', ...

    fastseq keeps no graph or session; the names are its only global state (as after
    ``keras.backend.clear_session()``).
    """
    reset_name_uids()


def floatx():
    """The default float type of weights and activations: 'float32', as in Keras."""
    return "float32"
