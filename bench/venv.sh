# Shared by the benchmark scripts that compare with a Python library: `python_venv DIR MODULE
# REQUIREMENT` creates the venv DIR (under target/) and installs REQUIREMENT into it unless
# MODULE already imports there.
python_venv() {
    local venv=$1 module=$2 requirement=$3
    if ! "$venv/bin/python" -c "import $module" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "$requirement"
    fi
}
