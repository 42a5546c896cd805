"""Python code with nothing declaring its dependencies: the classic `ModuleNotFoundError: No module named 'flask'`."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "this app never starts: flask is not installed"
