# The BASELINE of the benchmark: the seed document's "Minimal Example" webhook receiver,
# copied verbatim from the seed document ("Monitoring Power Events", Webhook Integration
# Guide, Step 1; a copy is tests/fixtures/seed-monitoring-power-events.txt). The benchmark
# checks at run time that this copy still matches the seed text. Only the adapter at the bottom is ours: it lets the
# same functions-framework server that serves gridhook serve this receiver too.
# ruff: noqa
# fmt: off
# --- verbatim from the seed ----------------------------------------------------------
# Minimal webhook endpoint example (Flask)
from flask import Flask, request, jsonify

app = Flask(__name__)

@app.route('/nvgrid/webhook', methods=['POST'])
def receive_power_event():
    """Receive power event from DPS NvGrid"""
    event_data = request.get_json()

    # Extract key fields
    event_type = event_data.get('event')
    correlation_id = event_data.get('correlation_id')
    target_load = event_data.get('target_load', {})
    calculated_load = event_data.get('calculated_load', {})

    # Your processing logic here
    print(f"Received {event_type}: {target_load.get('value')} {target_load.get('unit')}")

    return jsonify({'status': 'success'}), 200

if __name__ == '__main__':
    app.run(host='0.0.0.0', port=8080)
# --- end of the verbatim copy --------------------------------------------------------
# fmt: on


def seed_webhook(request):
    """functions-framework HTTP target: the seed's view, run in the framework's request
    context (its ``request`` and ``jsonify`` are Flask's globals, bound there as well)."""
    return receive_power_event()
