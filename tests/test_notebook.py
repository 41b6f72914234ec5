"""notebooks/tour.ipynb: committed without outputs, and run top to bottom on the real MNIST."""

import os
import time

import pytest

from support import REAL_DATA, REPO

NOTEBOOK = REPO / "notebooks" / "tour.ipynb"
EXPECTED_SECONDS = 60.0  # a kernel start and two networks' short epochs


def test_the_committed_notebook_holds_no_outputs_nor_execution_counts() -> None:
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom_on_the_real_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LENET5_DATA_DIR", str(REAL_DATA))
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    started = time.perf_counter()
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any failure
    seconds = time.perf_counter() - started
    text = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "classic  reads" in text and "modern   reads" in text
    assert "after one more" in text
    pictures = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pictures) == 2
    print(f"notebook executed in {seconds:.1f} s on {os.cpu_count()} cores")
