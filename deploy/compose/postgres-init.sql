-- One database per service: each service owns its store.
CREATE DATABASE intake;
CREATE DATABASE router;
CREATE DATABASE notifier;
CREATE DATABASE events;
CREATE DATABASE coordination;
