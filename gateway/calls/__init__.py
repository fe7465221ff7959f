"""The call controller: originate, control, the state machine, inbound routing, scripts."""
