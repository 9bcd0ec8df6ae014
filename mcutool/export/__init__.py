"""Writers of the IR in other tools' formats."""
