"""Where records go: stdout, files, Kinesis, behind one interface (`base.Sink`).

Sinks never import each other; the engine picks one through `base.Sink`.
"""
