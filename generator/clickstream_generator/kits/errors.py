"""The root of the generator's exceptions.

Every error the generator raises on purpose derives from `GeneratorError`;
anything else reaching the command line is a bug and shows a traceback only
with ``--debug``::

    GeneratorError
    ├── ConfigError            (model) a configuration that cannot be used
    ├── SinkError              (sinks) a record could not be delivered
    │   ├── RetryableSinkError     worth another try later
    │   └── PermanentSinkError     will fail again; stop and report
    └── IllegalTransition      (engine) a lifecycle step not allowed now
"""


class GeneratorError(Exception):
    """Base of all errors that the generator raises deliberately."""
