"""Ray, imported only when a distributed function runs: ``fastseq.distributed`` imports
without it."""

_MISSING = ("fastseq.distributed needs Ray, which is not installed: pip install fastseq[ray] "
            "(or pip install 'ray[tune]>=2.9')")


def require_ray():
    """The ``ray`` module, started locally if no cluster is connected yet; ImportError
    naming the extra to install when Ray is missing."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(_MISSING) from err
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    return ray


def require_tune():
    try:
        from ray import tune
    except ImportError as err:
        raise ImportError(_MISSING) from err
    return tune
