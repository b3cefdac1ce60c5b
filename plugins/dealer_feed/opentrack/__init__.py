"""DealerTrack OpenTrack: SOAP client, streaming parse, typed errors, Airflow hook, onboarding check."""
