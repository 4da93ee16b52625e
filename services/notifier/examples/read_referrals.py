"""Lire les orientations de votre association sur Kafka, avec confluent-kafka.

    python read_referrals.py --config association-<id>.librdkafka.conf \\
                             --group association-<id>.python referrals.<id>

`--config` : le fichier de configuration que l'équipe du portail vous a remis (adresse du
cluster, protocole, identifiants ; kcat lit le même avec `-F`). Le groupe commence par votre
identifiant Kafka, `association-<id>.` : Kafka y retient ce que vous avez déjà lu. Chaque
événement est écrit sur une ligne JSON (clé, en-têtes `ce_*`, valeur) ; remplacez `handle` par
l'enregistrement dans votre outil. Il faut confluent-kafka 2.6.1 ou plus récent (sa librdkafka
s'authentifie auprès de Kafka 4 avec SCRAM).

Read your association's referrals from Kafka with confluent-kafka (2.6.1 or later): one JSON
line per event (key, `ce_*` headers, value); an offset is committed only once `handle` returned.
"""

import argparse
import json
import sys

from confluent_kafka import Consumer, KafkaException, Message


def load_config(path: str) -> dict[str, str]:
    """Les lignes `clé=valeur` d'un fichier de configuration librdkafka (`#` : commentaire)."""
    config = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                config[key.strip()] = value.strip()
    return config


def handle(message: Message) -> None:
    """Votre traitement. `ce_type` dit ce que porte l'événement : une orientation
    (`fr.rebond.referral.offered`) à enregistrer, en dédoublonnant par `ce_id` (une même
    orientation peut arriver deux fois), ou un retrait (`fr.rebond.referral.withdrawn`) : la
    personne a demandé l'effacement, supprimez ce que vous détenez sur cette orientation."""
    headers = {name: (value or b"").decode() for name, value in message.headers() or []}
    key = (message.key() or b"").decode()
    value = json.loads(message.value() or b"null")
    print(json.dumps({"key": key, "headers": headers, "value": value}, ensure_ascii=False))
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description="Lire ses orientations Rebond sur Kafka.")
    parser.add_argument("--config", required=True, help="association-<id>.librdkafka.conf")
    parser.add_argument("--group", required=True, help="association-<id>.<nom>")
    parser.add_argument("topic", help="referrals.<id>")
    args = parser.parse_args()
    consumer = Consumer(
        load_config(args.config)
        | {"group.id": args.group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([args.topic])
    try:
        while True:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            handle(message)
            consumer.commit(message=message, asynchronous=False)
    except KafkaException as error:
        print(f"read_referrals: Kafka a refusé / Kafka refused: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        consumer.close()


if __name__ == "__main__":
    sys.exit(main())
