"""Coverage-guided fuzzing of every parser the gateway and the simulator expose to peers.

    targets/      one module per parser, each with `one_input(data: bytes) -> None`: the
                  parser's contract checked on one input (no fuzzing engine needed)
    engine.py     one target under atheris (libFuzzer), in a process of its own
    run.py        `make fuzz`: every target in turn, a summary in fuzz/results.json
    seeds.py      rebuilds corpus/<target>/ from the tests' vectors, fixtures and samples
    corpus/       the committed seed inputs, small; the engine's own finds go to work/

The contract is the same for all: a result, or the module's own rejection with a reason
code; any other exception is a finding, and so are a hang and memory beyond the bound.
"""
