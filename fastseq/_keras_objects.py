"""get / serialize / deserialize for small Keras objects named by class (regularizers,
constraints), in Keras 3's format::

    {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.01},
     "registered_name": None}

so configs round trip with fastseq and read as Keras 3 writes them. A plain function
(a custom regularizer ``f(x) -> float``) serializes as Keras does, by name
(``class_name: "function"``), and deserializes only through ``custom_objects``.
"""
import inspect


def serialize_object(obj, keras_module, builtin_classes):
    """Keras 3's dict for ``obj`` (None for None). ``builtin_classes``: name -> class of
    the module's own objects, written with ``keras_module``; other classes with their own
    module and a registered name (as Keras writes custom objects)."""
    if obj is None:
        return None
    if inspect.isfunction(obj):
        return {"module": obj.__module__, "class_name": "function", "config": obj.__name__,
                "registered_name": obj.__name__}
    cls = type(obj)
    config = obj.get_config()
    if builtin_classes.get(cls.__name__) is cls:
        return {"module": keras_module, "class_name": cls.__name__, "config": config,
                "registered_name": None}
    return {"module": cls.__module__, "class_name": cls.__name__, "config": config,
            "registered_name": cls.__name__}


def deserialize_object(config, what, names, custom_objects=None):
    """A new object from a dict written by :func:`serialize_object` (or Keras 3), or from a
    name. ``names``: every accepted name -> a class or a factory; ``what`` names the kind
    of object in errors ('regularizer')."""
    if config is None:
        return None
    if isinstance(config, str):
        return get_object(config, what, names, custom_objects)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"Could not deserialize {what} {config!r}: expected a dict with 'class_name' and "
            "'config' (as serialize writes) or a name")
    custom_objects = custom_objects or {}
    class_name = config["class_name"]
    inner = config.get("config")
    if class_name == "function":
        key = config.get("registered_name") or inner
        function = custom_objects.get(key)
        if function is None:
            raise ValueError(f"Could not deserialize the {what} function {key!r}: pass it in "
                             "custom_objects={name: function}")
        return function
    cls = (custom_objects.get(config.get("registered_name") or class_name)
           or custom_objects.get(class_name) or names.get(class_name))
    if cls is None:
        raise ValueError(f"Unknown {what} class {class_name!r}; known: {sorted(names)} "
                         "(a custom class goes in custom_objects)")
    if not inspect.isclass(cls):  # a factory such as the 'l1_l2' string's
        return cls()
    return cls.from_config(dict(inner or {}))


def get_object(identifier, what, names, custom_objects=None):
    """Keras's ``get``: None -> None; a name (one of ``names``) -> a new object with its
    defaults; a config dict -> deserialized; an object or a callable -> as it is (a class
    -> an instance)."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize_object(identifier, what, names, custom_objects)
    if isinstance(identifier, str):
        factory = (custom_objects or {}).get(identifier) or names.get(identifier)
        if factory is None:
            raise ValueError(f"Unknown {what} {identifier!r}; known names: {sorted(names)}")
        return factory()
    if callable(identifier):
        return identifier() if inspect.isclass(identifier) else identifier
    raise ValueError(f"Could not interpret {what} identifier {identifier!r}: expected a name "
                     f"({', '.join(sorted(names))}), a config dict, a {what} object or a "
                     "callable")
