"""Deterministic seeding of the udata store, through udata's own models.

Runs inside the udata venv, in an app context (see ``serve.py``). Every object gets an id
derived from a counter, fixed dates and text from a seeded Faker, so two runs with the same
options produce the same store, the same manifest and the same API responses (except fields
udata computes from the current date, such as ``quality`` and login timestamps).

Documents are built as real mongoengine models, checked with udata's own ``validate()`` /
``clean()`` (quality, ``last_update``, urlhash...), converted with ``to_mongo()`` and
bulk-inserted with the collection's indexes dropped, then the model indexes are rebuilt.
Saving one by one (or through the factories) is quadratic with mongomock: each save checks
every unique index with a full scan.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import slugify
from bson import ObjectId
from faker import Faker
from faker.providers.lorem.fr_FR import Provider as FrenchLorem
from flask import current_app
from udata.core.api_token.models import ApiToken
from udata.core.dataset.models import (
    Checksum,
    CommunityResource,
    Dataset,
    DatasetBadge,
    HarvestDatasetMetadata,
    HarvestResourceMetadata,
    License,
    Resource,
)
from udata.core.discussions.models import Discussion, Message
from udata.core.organization.models import Member, Organization, OrganizationBadge
from udata.core.post.models import Post
from udata.core.reuse.models import Reuse
from udata.core.site.models import Site
from udata.core.spatial.models import GeoLevel, GeoZone, SpatialCoverage
from udata.core.tags.models import Tag
from udata.core.topic.models import Topic, TopicElement
from udata.core.user.models import Role, User
from udata.harvest.models import (
    HarvestError,
    HarvestItem,
    HarvestJob,
    HarvestSource,
    HarvestSourceValidation,
)
from udata.mongo.datetime_fields import DateRange

SEED = 20240101
BASE_DATE = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
# ObjectIds: a fixed timestamp, a 2-byte kind code and a counter, so they sort by creation.
_OID_TIMESTAMP = int(BASE_DATE.timestamp())
_UUID_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")

THEMES = (
    "Transport",
    "Énergie",
    "Qualité de l'air",
    "Budget",
    "Éducation",
    "Santé",
    "Logement",
    "Agriculture",
    "Eau potable",
    "Culture",
)
SUBJECTS = (
    "horaires théoriques",
    "consommation annuelle",
    "mesures quotidiennes",
    "comptes administratifs",
    "effectifs",
    "établissements",
    "prix moyens",
    "parcelles déclarées",
    "analyses",
    "équipements",
)
TAGS = (
    "transport",
    "energie",
    "environnement",
    "finances",
    "education",
    "sante",
    "logement",
    "agriculture",
    "eau",
    "culture",
    "open-data",
    "statistiques",
)
# (format, mime, resource type, filetype)
RESOURCE_KINDS = (
    ("csv", "text/csv", "main", "file"),
    ("json", "application/json", "main", "file"),
    ("pdf", "application/pdf", "documentation", "file"),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "update", "file"),
    ("geojson", "application/geo+json", "main", "remote"),
    ("json", "application/json", "api", "remote"),
    ("zip", "application/zip", "other", "file"),
    ("", None, "code", "remote"),
    ("parquet", None, "main", "file"),
    ("shp", "application/octet-stream", "main", "file"),
)
FREQUENCIES = (
    None,
    "annual",
    "monthly",
    "daily",
    "punctual",
    "irregular",
    "weekly",
    "continuous",
    "quarterly",
    "unknown",
)
LICENSES = (
    ("notspecified", "License Not Specified", None, ["generic"]),
    (
        "lov2",
        "Licence Ouverte / Open Licence version 2.0",
        "https://www.etalab.gouv.fr/licence-ouverte-open-licence",
        ["domain_content", "domain_data", "okd_compliant", "osi_compliant"],
    ),
    (
        "odc-odbl",
        "Open Data Commons Open Database License (ODbL)",
        "https://opendatacommons.org/licenses/odbl/summary/",
        ["domain_data", "okd_compliant"],
    ),
    (
        "cc-by",
        "Creative Commons Attribution",
        "https://creativecommons.org/licenses/by/4.0/",
        ["domain_content", "okd_compliant"],
    ),
    (
        "cc-zero",
        "Creative Commons CCZero",
        "https://creativecommons.org/publicdomain/zero/1.0/",
        ["domain_content", "domain_data", "okd_compliant"],
    ),
    ("other-open", "Other (Open)", None, ["generic", "okd_compliant"]),
)
GEO_LEVELS = (
    ("country", "Pays", 10),
    ("fr:region", "Région française", 40),
    ("fr:departement", "Département français", 60),
    ("fr:commune", "Commune française", 80),
)
GEO_ZONES = (
    ("country:fr", "fr", "France", "fr", "country"),
    ("fr:region:11", "ile-de-france", "Île-de-France", "11", "fr:region"),
    ("fr:region:84", "auvergne-rhone-alpes", "Auvergne-Rhône-Alpes", "84", "fr:region"),
    ("fr:departement:75", "paris", "Paris", "75", "fr:departement"),
    ("fr:commune:69123", "lyon", "Lyon", "69123", "fr:commune"),
)


def object_id(kind: int, number: int) -> ObjectId:
    """A stable ObjectId: fixed timestamp, 2-byte kind, counter."""
    return ObjectId(f"{_OID_TIMESTAMP:08x}{kind:04x}{number:012x}")


def stable_uuid(*parts: object) -> uuid.UUID:
    return uuid.uuid5(_UUID_NAMESPACE, "/".join(str(part) for part in parts))


def at(hours: float) -> datetime:
    return BASE_DATE + timedelta(hours=hours)


def naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def slug_of(text: str) -> str:
    slug: str = slugify.slugify(text, max_length=255, separator="-", to_lower=True)
    return slug


class Kind:
    ROLE = 1
    USER = 2
    ORGANIZATION = 3
    DATASET = 4
    REUSE = 5
    COMMUNITY_RESOURCE = 6
    DISCUSSION = 7
    HARVEST_SOURCE = 8
    HARVEST_JOB = 9
    TOPIC = 10
    TOPIC_ELEMENT = 11
    POST = 12
    API_TOKEN = 13
    TAG = 14


@dataclass(frozen=True)
class SeedOptions:
    datasets: int = 30
    # full model validation on the first N datasets and every Kth; clean() only on the rest
    full_validation_first: int = 400
    full_validation_every: int = 25

    @property
    def hidden_per_kind(self) -> int:
        return max(3, self.datasets // 50)


@dataclass
class Store:
    """What has been built, kept for the manifest."""

    users: dict[str, User] = field(default_factory=dict)
    deleted_users: list[User] = field(default_factory=list)
    api_keys: dict[str, str] = field(default_factory=dict)
    organizations: list[Organization] = field(default_factory=list)
    deleted_organizations: list[Organization] = field(default_factory=list)
    datasets: dict[str, list[Dataset]] = field(default_factory=lambda: defaultdict(list))
    harvested: list[Dataset] = field(default_factory=list)
    community_resources: list[CommunityResource] = field(default_factory=list)
    reuses: dict[str, list[Reuse]] = field(default_factory=lambda: defaultdict(list))
    harvest_sources: list[HarvestSource] = field(default_factory=list)
    deleted_harvest_sources: list[HarvestSource] = field(default_factory=list)
    harvest_jobs: dict[str, list[HarvestJob]] = field(default_factory=lambda: defaultdict(list))
    topics: dict[str, list[Topic]] = field(default_factory=lambda: defaultdict(list))
    posts: dict[str, list[Post]] = field(default_factory=lambda: defaultdict(list))
    discussions: list[Discussion] = field(default_factory=list)
    licenses: list[License] = field(default_factory=list)
    zones: dict[str, GeoZone] = field(default_factory=dict)


def bulk_insert(model: Any, documents: Sequence[Any], *, validate: Iterable[bool] = ()) -> None:
    """Insert documents built in memory, after udata's own validation.

    ``validate`` says per document whether to run the full ``validate()`` (field checks and
    ``clean()``); otherwise only ``clean()`` runs, which computes the derived fields.
    """
    flags = itertools.chain(validate, itertools.repeat(True))
    payload = []
    for document, full in zip(documents, flags, strict=False):
        if full:
            document.validate()
        else:
            document.clean()
        payload.append(document.to_mongo())
    collection = model._get_collection()
    # mongomock checks unique indexes by scanning the collection on every insert
    collection.drop_indexes()
    if payload:
        collection.insert_many(payload)
    model.ensure_indexes()


def make_api_key(name: str) -> str:
    """A stable key shaped like udata's (``udata_`` + 64 url-safe chars)."""
    digest = hashlib.sha512(f"aioudata-test-key/{name}".encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "udata_" + "".join(alphabet[byte % 64] for byte in digest)


def token_hash(plaintext: str) -> str:
    key = current_app.config["API_TOKEN_SECRET"].encode()
    return hmac.new(key, plaintext.encode(), hashlib.sha256).hexdigest()


class Seeder:
    def __init__(self, options: SeedOptions) -> None:
        self.options = options
        self.random = random.Random(SEED)
        self.fake = Faker("fr_FR")
        self.fake.add_provider(FrenchLorem)  # udata unregisters faker's lorem providers
        self.fake.seed_instance(SEED)
        self.store = Store()
        self._counters: Counter[int] = Counter()

    def next_id(self, kind: int) -> ObjectId:
        self._counters[kind] += 1
        return object_id(kind, self._counters[kind])

    def paragraph(self, sentences: int = 3) -> str:
        return " ".join(self.fake.sentences(nb=sentences))

    # --- reference data --------------------------------------------------------------

    def seed_reference_data(self) -> None:
        licenses = [
            License(
                id=license_id,
                title=title,
                slug=slug_of(title),
                url=url,
                flags=flags,
                maintainer="Etalab" if license_id == "lov2" else None,
                active=True,
                created_at=at(-24 * 30),
            )
            for license_id, title, url, flags in LICENSES
        ]
        bulk_insert(License, licenses)
        self.store.licenses = licenses

        levels = [
            GeoLevel(id=level_id, name=name, admin_level=admin_level)
            for level_id, name, admin_level in GEO_LEVELS
        ]
        bulk_insert(GeoLevel, levels)
        zones = [
            GeoZone(
                id=zone_id,
                slug=slug,
                name=name,
                code=code,
                level=level,
                uri=f"https://www.example.org/zones/{zone_id}",
                ancestors=["country:fr"] if zone_id != "country:fr" else [],
            )
            for zone_id, slug, name, code, level in GEO_ZONES
        ]
        bulk_insert(GeoZone, zones)
        self.store.zones = {zone.id: zone for zone in zones}

    # --- users -----------------------------------------------------------------------

    def seed_users(self) -> None:
        admin_role = Role(id=object_id(Kind.ROLE, 1), name="admin")
        bulk_insert(Role, [admin_role])
        people = [
            ("admin", "Ada", "Administratrice", [admin_role]),
            ("user", "Paul", "Publieur", []),
            ("other", "Olga", "Observatrice", []),
            ("contributor-1", "Camille", "Contributrice", []),
            ("contributor-2", "Étienne", "Éditeur", []),
            ("contributor-3", "Zoé", "Réutilisatrice", []),
        ]
        users = []
        for index, (key, first_name, last_name, roles) in enumerate(people):
            created = at(-24 * 20 + index)
            user = User(
                id=self.next_id(Kind.USER),
                slug=slug_of(f"{first_name} {last_name}"),
                email=f"{key}@example.org",
                first_name=first_name,
                last_name=last_name,
                about=self.paragraph(2),
                website=f"https://{key}.example.org" if index % 2 else None,
                roles=roles,
                active=True,
                fs_uniquifier=stable_uuid("user", key).hex,
                created_at=created,
                confirmed_at=created,
            )
            users.append(user)
            self.store.users[key] = user
        deleted = User(
            id=self.next_id(Kind.USER),
            slug="utilisateur-supprime",
            email="deleted@example.org",
            first_name="Utilisateur",
            last_name="Supprimé",
            active=False,
            fs_uniquifier=stable_uuid("user", "deleted").hex,
            created_at=at(-24 * 19),
            confirmed_at=at(-24 * 19),
            deleted=at(-24 * 2),
        )
        users.append(deleted)
        self.store.deleted_users.append(deleted)
        bulk_insert(User, users)

        tokens = []
        for key in ("admin", "user", "other"):
            tokens.append(self._token(key, self.store.users[key]))
        tokens.append(self._token("revoked", self.store.users["other"], revoked_at=at(-24)))
        tokens.append(self._token("expired", self.store.users["other"], expires_at=at(-24 * 3)))
        bulk_insert(ApiToken, tokens)

    def _token(self, name: str, user: User, **extra: Any) -> ApiToken:
        plaintext = make_api_key(name)
        self.store.api_keys[name] = plaintext
        return ApiToken(
            id=self.next_id(Kind.API_TOKEN),
            token_hash=token_hash(plaintext),
            token_prefix=plaintext[: len("udata_") + 8],
            user=user,
            name=f"{name} key",
            scopes=["admin"],
            created_at=at(-24 * 10),
            **extra,
        )

    # --- organizations ---------------------------------------------------------------

    def seed_organizations(self) -> None:
        users = self.store.users
        specs = [
            (
                "Ministère de l'Exemple",
                "MEX",
                ["public-service", "certified"],
                [(users["user"], "admin"), (users["contributor-1"], "editor")],
            ),
            (
                "Région Île-de-Test",
                None,
                ["local-authority", "public-service"],
                [(users["contributor-2"], "admin")],
            ),
            (
                "Association OpenData Exemple",
                "AODE",
                ["association"],
                [(users["contributor-1"], "admin"), (users["user"], "editor")],
            ),
            ("Entreprise Données & Cie", None, ["company"], [(users["contributor-3"], "admin")]),
            ("Observatoire Énergie Climat", "OEC", [], [(users["contributor-2"], "admin")]),
        ]
        organizations = []
        for index, (name, acronym, badges, members) in enumerate(specs):
            created = at(-24 * 15 + index)
            organization = Organization(
                id=self.next_id(Kind.ORGANIZATION),
                name=name,
                acronym=acronym,
                slug=slug_of(name),
                description=self.paragraph(3),
                url=f"https://www.{slug_of(name)[:20]}.example.org",
                business_number_id=None,
                badges=[
                    OrganizationBadge(kind=kind, created=created, created_by=users["admin"])
                    for kind in badges
                ],
                members=[Member(user=user, role=role, since=created) for user, role in members],
                created_at=created,
                last_modified=created,
            )
            organizations.append(organization)
        self.store.organizations = list(organizations)
        deleted = Organization(
            id=self.next_id(Kind.ORGANIZATION),
            name="Organisation Supprimée",
            slug="organisation-supprimee",
            description="Une organisation qui n'existe plus.",
            members=[Member(user=users["contributor-3"], role="admin", since=at(-24 * 14))],
            created_at=at(-24 * 14),
            last_modified=at(-24 * 3),
            deleted=at(-24 * 3),
        )
        organizations.append(deleted)
        self.store.deleted_organizations.append(deleted)
        # Inserted after the datasets and reuses, once their metrics are known.
        self._pending_organizations = organizations

    # --- datasets --------------------------------------------------------------------

    def _owner(self, index: int) -> dict[str, Any]:
        users = self.store.users
        organizations = self.store.organizations
        if index % 5 == 4:
            owners = [users["user"], users["contributor-1"], users["contributor-2"]]
            return {"owner": owners[(index // 5) % len(owners)]}
        return {"organization": organizations[index % len(organizations)]}

    def _resources(
        self, number: int, created: datetime, count: int, harvested: bool
    ) -> list[Resource]:
        resources = []
        for position in range(count):
            fmt, mime, rtype, filetype = RESOURCE_KINDS[
                (number + position * 3) % len(RESOURCE_KINDS)
            ]
            rid = stable_uuid("resource", number, position)
            rcreated = created + timedelta(minutes=position)
            extension = f".{fmt}" if fmt else ""
            extras: dict[str, Any] = {}
            if (number + position) % 3 == 0:
                extras = {
                    "check:available": True,
                    "check:status": 200,
                    "check:date": naive(rcreated + timedelta(days=30)),
                }
            resource = Resource(
                id=rid,
                title=f"Fichier {position + 1} du jeu {number:05d}{extension}",
                description=self.paragraph(1) if position % 2 == 0 else None,
                filetype=filetype,
                type=rtype,
                url=f"https://static.example.org/datasets/{number:05d}/{rid.hex[:8]}{extension}",
                format=fmt or None,
                mime=mime,
                filesize=1024 * (number % 97 + 1) * (position + 1) if filetype == "file" else None,
                checksum=(
                    Checksum(type="sha1", value=hashlib.sha1(rid.bytes).hexdigest())
                    if filetype == "file" and position % 2 == 0
                    else None
                ),
                extras=extras,
                created_at_internal=rcreated,
                last_modified_internal=rcreated + timedelta(days=position + 1),
            )
            if harvested:
                resource.harvest = HarvestResourceMetadata(
                    uri=f"https://catalog.example.org/resources/{rid}",
                    issued_at=naive(rcreated - timedelta(days=400)),
                    modified_at=naive(rcreated - timedelta(days=10)),
                    remote_id=f"remote-resource-{number}-{position}",
                )
            resources.append(resource)
        return resources

    def _dataset(self, number: int, created: datetime, visibility: str, **owner: Any) -> Dataset:
        showcase = number == 1  # has every optional feature, for recorded fixtures
        theme = THEMES[number % len(THEMES)]
        subject = SUBJECTS[(number // len(THEMES)) % len(SUBJECTS)]
        year = 2015 + number % 10
        title = f"{theme} — {subject} {year} ({number:05d})"
        harvested = visibility == "public" and number % 10 == 7 and bool(self.store.harvest_sources)
        if harvested:
            owner = {"organization": self.store.harvest_sources[0].organization}
        tags = sorted({TAGS[number % len(TAGS)], TAGS[(number * 7 + 3) % len(TAGS)], "open-data"})
        license_id = LICENSES[number % len(LICENSES)][0] if number % 7 else None
        frequency = FREQUENCIES[number % len(FREQUENCIES)]
        values: dict[str, Any] = {
            "id": object_id(Kind.DATASET, number),
            "title": title,
            "slug": slug_of(title),
            "acronym": f"DS{number}" if number % 8 == 3 or showcase else None,
            "description": self.paragraph(4),
            "description_short": self.fake.sentence() if number % 4 == 0 or showcase else None,
            "tags": tags,
            "license": license_id and self._license(license_id),
            "frequency": frequency,
            "resources": self._resources(
                number, created, 4 if showcase else 1 + number % 4, harvested
            ),
            "created_at_internal": created,
            "last_modified_internal": created + timedelta(days=2),
            **owner,
        }
        if number % 3 == 0 or showcase:
            values["temporal_coverage"] = DateRange(start=date(year, 1, 1), end=date(year, 12, 31))
        if number % 4 == 1:
            zones = [self.store.zones["fr:region:11"]] if number % 8 == 1 else []
            values["spatial"] = SpatialCoverage(granularity="fr:region", zones=zones)
        if number % 6 == 2 or showcase:
            values["extras"] = {
                "datagouv_ckan_last_sync": naive(created + timedelta(days=1)),
                "producer:reference": f"REF-{number:05d}",
            }
        if number % 10 == 0:
            values["badges"] = [DatasetBadge(kind="hvd", created=created)]
        elif number % 15 == 1:
            values["badges"] = [DatasetBadge(kind="inspire", created=created)]
        if visibility == "private":
            values["private"] = True
        elif visibility == "archived":
            values["archived"] = created + timedelta(days=5)
        elif visibility == "deleted":
            values["deleted"] = created + timedelta(days=6)
        if harvested:
            source = self.store.harvest_sources[0]
            values["harvest"] = HarvestDatasetMetadata(
                backend="DCAT",
                domain=source.domain,
                source_id=str(source.id),
                source_url=source.url,
                remote_id=f"remote-dataset-{number}",
                remote_url=f"https://catalog.example.org/datasets/{number}",
                uri=f"https://catalog.example.org/datasets/{number}",
                created_at=naive(created - timedelta(days=500)),
                issued_at=naive(created - timedelta(days=400)),
                modified_at=naive(created - timedelta(days=10)),
                last_update=naive(created + timedelta(hours=1)),
            )
        dataset = Dataset(**values)
        if harvested:
            self.store.harvested.append(dataset)
        return dataset

    def _license(self, license_id: str) -> License:
        return next(item for item in self.store.licenses if item.id == license_id)

    def seed_datasets(self) -> None:
        options = self.options
        datasets: list[Dataset] = []
        for number in range(options.datasets):
            dataset = self._dataset(number, at(number), "public", **self._owner(number))
            self.store.datasets["public"].append(dataset)
            datasets.append(dataset)
        users = self.store.users
        organizations = self.store.organizations
        hidden_owners = [
            {"owner": users["user"]},
            {"organization": organizations[0]},  # "user" is an admin there
            {"organization": organizations[3]},  # "user" is no member there
        ]
        number = options.datasets
        for visibility in ("private", "archived", "deleted"):
            for index in range(options.hidden_per_kind):
                owner = hidden_owners[index % len(hidden_owners)]
                dataset = self._dataset(number, at(number), visibility, **owner)
                self.store.datasets[visibility].append(dataset)
                datasets.append(dataset)
                number += 1
        first, every = options.full_validation_first, options.full_validation_every
        bulk_insert(
            Dataset,
            datasets,
            validate=(index < first or index % every == 0 for index in range(len(datasets))),
        )

        public = self.store.datasets["public"]
        community = [
            CommunityResource(
                id=stable_uuid("community-resource", index),
                title=f"Ressource communautaire {index + 1}",
                description=self.paragraph(1),
                filetype="remote",
                type="other",
                url=f"https://community.example.org/contrib/{index + 1}.csv",
                format="csv",
                mime="text/csv",
                dataset=public[index],
                created_at_internal=at(index + 0.5),
                last_modified_internal=at(index + 0.5),
                **(
                    {"owner": users["contributor-3"]}
                    if index % 2 == 0
                    else {"organization": organizations[3]}
                ),
            )
            for index in range(min(2, len(public)))
        ]
        bulk_insert(CommunityResource, community)
        self.store.community_resources = community

    # --- reuses ----------------------------------------------------------------------

    def seed_reuses(self) -> None:
        public = self.store.datasets["public"]
        users = self.store.users
        organizations = self.store.organizations
        reuse_types = ("application", "visualization", "api", "news_article", "idea", "paper")
        topics = ("transport_and_mobility", "health", "others", "housing_and_development")
        specs = [
            ("Carte interactive des mobilités", "public", {"organization": organizations[2]}),
            ("Tableau de bord énergie", "public", {"owner": users["contributor-3"]}),
            ("API des équipements culturels", "public", {"organization": organizations[3]}),
            ("Article : l'eau en chiffres", "public", {"owner": users["user"]}),
            ("Visualisation budgétaire", "public", {"organization": organizations[0]}),
            ("Prototype privé", "private", {"owner": users["user"]}),
            ("Réutilisation supprimée", "deleted", {"owner": users["contributor-3"]}),
            ("Application archivée", "archived", {"organization": organizations[1]}),
        ]
        reuses = []
        for index, (title, visibility, owner) in enumerate(specs):
            created = at(-24 + index)
            linked = [public[(index * 3 + offset) % len(public)] for offset in range(1 + index % 3)]
            values: dict[str, Any] = {
                "id": object_id(Kind.REUSE, index + 1),
                "title": title,
                "slug": slug_of(title),
                "description": self.paragraph(3),
                "type": reuse_types[index % len(reuse_types)],
                "topic": topics[index % len(topics)],
                "url": f"https://reuses.example.org/{slug_of(title)}",
                "tags": sorted({TAGS[index % len(TAGS)], "reutilisation"}),
                "datasets": list(dict.fromkeys(linked)),
                "created_at": created,
                "last_modified": created + timedelta(days=1),
                **owner,
            }
            if visibility == "private":
                values["private"] = True
            elif visibility == "deleted":
                values["deleted"] = created + timedelta(days=2)
            elif visibility == "archived":
                values["archived"] = created + timedelta(days=2)
            reuse = Reuse(**values)
            reuses.append(reuse)
            self.store.reuses[visibility].append(reuse)
        bulk_insert(Reuse, reuses)

    # --- harvest ---------------------------------------------------------------------

    def seed_harvest_sources(self) -> None:
        users = self.store.users
        organizations = self.store.organizations
        specs = [
            (
                "Catalogue DCAT de la Région",
                "https://catalog.example.org/dcat/catalog.xml",
                "dcat",
                {"organization": organizations[1]},
                "accepted",
                None,
            ),
            (
                "Portail CKAN Exemple",
                "https://ckan.example.org",
                "ckan",
                {"owner": users["contributor-1"]},
                "pending",
                None,
            ),
            (
                "Ancien moissonneur",
                "https://old.example.org/dcat.rdf",
                "dcat",
                {"organization": organizations[2]},
                "accepted",
                at(-24 * 4),
            ),
        ]
        sources = []
        for index, (name, url, backend, owner, state, deleted) in enumerate(specs):
            created = at(-24 * 12 + index)
            validation = HarvestSourceValidation(state=state)
            if state == "accepted":
                validation.by = users["admin"]
                validation.on = created + timedelta(hours=2)
                validation.comment = "Source validée."
            source = HarvestSource(
                id=self.next_id(Kind.HARVEST_SOURCE),
                name=name,
                slug=slug_of(name),
                description=self.paragraph(2),
                url=url,
                backend=backend,
                config={},
                created_at=created,
                frequency="daily" if index == 0 else "manual",
                active=True,
                autoarchive=True,
                validation=validation,
                deleted=deleted,
                **owner,
            )
            sources.append(source)
            if deleted:
                self.store.deleted_harvest_sources.append(source)
            else:
                self.store.harvest_sources.append(source)
        bulk_insert(HarvestSource, sources)

    def seed_harvest_jobs(self) -> None:
        harvested = self.store.harvested
        jobs = []
        active_source, ckan_source = self.store.harvest_sources[:2]
        for run in range(2):
            created = at(-24 * 2 + run * 12)
            items = [
                HarvestItem(
                    remote_id=dataset.harvest.remote_id,
                    remote_url=dataset.harvest.remote_url,
                    dataset=dataset,
                    status="done",
                    created=created,
                    started=created + timedelta(seconds=10),
                    ended=created + timedelta(seconds=12),
                    logs=[],
                )
                for dataset in harvested[:20]
            ]
            items.append(
                HarvestItem(
                    remote_id="remote-dataset-skipped",
                    status="skipped",
                    created=created,
                    started=created + timedelta(seconds=20),
                    ended=created + timedelta(seconds=20),
                    logs=[],
                )
            )
            items.append(
                HarvestItem(
                    remote_id="remote-dataset-broken",
                    status="failed",
                    created=created,
                    started=created + timedelta(seconds=21),
                    ended=created + timedelta(seconds=22),
                    errors=[
                        HarvestError(
                            created_at=created + timedelta(seconds=22),
                            message="Missing title",
                            details=None,
                        )
                    ],
                    logs=[],
                )
            )
            job = HarvestJob(
                id=self.next_id(Kind.HARVEST_JOB),
                created=created,
                started=created + timedelta(seconds=5),
                ended=created + timedelta(minutes=1),
                status="done-errors",
                items=items,
                source=active_source,
                data={},
            )
            jobs.append(job)
            self.store.harvest_jobs[str(active_source.id)].append(job)
        created = at(-24 * 2 + 6)
        failed = HarvestJob(
            id=self.next_id(Kind.HARVEST_JOB),
            created=created,
            started=created + timedelta(seconds=5),
            ended=created + timedelta(seconds=30),
            status="failed",
            errors=[
                HarvestError(
                    created_at=created + timedelta(seconds=30),
                    message="Unable to reach the remote catalog",
                    details="HTTP 503 from https://ckan.example.org/api/3/action/package_list",
                )
            ],
            items=[],
            source=ckan_source,
            data={},
        )
        jobs.append(failed)
        self.store.harvest_jobs[str(ckan_source.id)].append(failed)
        bulk_insert(HarvestJob, jobs)

    # --- discussions, topics, posts ----------------------------------------------------

    def seed_discussions(self) -> None:
        users = self.store.users
        public = self.store.datasets["public"]
        reuse = self.store.reuses["public"][0]
        specs = [
            (public[0], users["contributor-3"], "Mise à jour des données ?", None, 2),
            (reuse, users["contributor-2"], "Lien cassé", at(-24 + 30), 3),
            (public[min(1, len(public) - 1)], users["other"], "Question sur le format", None, 1),
        ]
        discussions = []
        for index, (subject, author, title, closed, messages) in enumerate(specs):
            created = at(-12 + index)
            thread = []
            for position in range(messages):
                poster = author if position % 2 == 0 else users["user"]
                thread.append(
                    Message(
                        id=stable_uuid("message", index, position),
                        content=self.paragraph(2),
                        posted_on=created + timedelta(hours=position),
                        posted_by=poster,
                    )
                )
            discussion = Discussion(
                id=self.next_id(Kind.DISCUSSION),
                user=author,
                subject=subject,
                title=title,
                discussion=thread,
                created=created,
                closed=closed,
                closed_by=users["user"] if closed else None,
            )
            discussions.append(discussion)
        bulk_insert(Discussion, discussions)
        self.store.discussions = discussions

    def seed_topics(self) -> None:
        public = self.store.datasets["public"]
        organizations = self.store.organizations
        topics = []
        elements = []
        specs = [
            ("Mobilités durables", False, {"organization": organizations[0]}),
            ("Brouillon de thématique", True, {"owner": self.store.users["user"]}),
        ]
        for index, (name, private, owner) in enumerate(specs):
            created = at(-6 + index)
            topic = Topic(
                id=self.next_id(Kind.TOPIC),
                name=name,
                slug=slug_of(name),
                description=self.paragraph(2),
                tags=["mobilite", "transport"],
                private=private,
                created_at=created,
                last_modified=created,
                **owner,
            )
            topics.append(topic)
            self.store.topics["private" if private else "public"].append(topic)
            linked: list[Any] = [public[(index + offset * 5) % len(public)] for offset in range(3)]
            linked.append(self.store.reuses["public"][index])
            for element in dict.fromkeys(linked):
                elements.append(
                    TopicElement(
                        id=self.next_id(Kind.TOPIC_ELEMENT),
                        title=None,
                        tags=[],
                        extras={},
                        element=element,
                        topic=topic,
                    )
                )
        bulk_insert(Topic, topics)
        bulk_insert(TopicElement, elements)

    def seed_posts(self) -> None:
        admin = self.store.users["admin"]
        public = self.store.datasets["public"]
        specs = [
            ("Lancement du portail de test", True),
            ("Nouveaux jeux de données sur l'énergie", True),
            ("Article en préparation", False),
        ]
        posts = []
        for index, (name, published) in enumerate(specs):
            created = at(-3 + index)
            post = Post(
                id=self.next_id(Kind.POST),
                name=name,
                slug=slug_of(name),
                headline=self.fake.sentence(),
                content=self.paragraph(5),
                tags=["actualite"],
                datasets=public[index : index + 2],
                reuses=self.store.reuses["public"][:1],
                owner=admin,
                published=created + timedelta(hours=1) if published else None,
                created_at=created,
                last_modified=created,
            )
            posts.append(post)
            self.store.posts["published" if published else "draft"].append(post)
        bulk_insert(Post, posts)

    # --- metrics and site ------------------------------------------------------------

    def seed_metrics(self) -> None:
        """Counters udata's jobs would compute (without the date-relative *_by_months)."""
        datasets = [
            d
            for kind in ("public", "private", "archived", "deleted")
            for d in self.store.datasets[kind]
        ]
        visible_reuses = self.store.reuses["public"] + self.store.reuses["archived"]
        reuses_per_dataset: Counter[Any] = Counter(
            dataset.id for reuse in self.store.reuses["public"] for dataset in reuse.datasets
        )
        discussions_per_subject: Counter[Any] = Counter()
        open_per_subject: Counter[Any] = Counter()
        for discussion in self.store.discussions:
            discussions_per_subject[discussion.subject.id] += 1
            if not discussion.closed:
                open_per_subject[discussion.subject.id] += 1
        dataset_collection = Dataset._get_collection()
        for dataset in datasets:
            metrics = {
                "reuses": reuses_per_dataset[dataset.id],
                "discussions": discussions_per_subject[dataset.id],
                "discussions_open": open_per_subject[dataset.id],
            }
            if any(metrics.values()):
                dataset_collection.update_one({"_id": dataset.id}, {"$set": {"metrics": metrics}})
        reuse_collection = Reuse._get_collection()
        for reuse in visible_reuses:
            metrics = {
                "datasets": len(reuse.datasets),
                "discussions": discussions_per_subject[reuse.id],
                "discussions_open": open_per_subject[reuse.id],
            }
            reuse_collection.update_one({"_id": reuse.id}, {"$set": {"metrics": metrics}})

        public = self.store.datasets["public"]
        for organization in self._pending_organizations:
            organization.metrics = {
                "datasets": sum(1 for d in public if d.organization == organization),
                "reuses": sum(1 for r in visible_reuses if r.organization == organization),
                "members": len(organization.members),
                "followers": 0,
                "dataservices": 0,
                "views": 0,
            }
        bulk_insert(Organization, self._pending_organizations)
        users = User._get_collection()
        for user in self.store.users.values():
            metrics = {
                "datasets": sum(1 for d in public if d.owner == user),
                "reuses": sum(1 for r in visible_reuses if r.owner == user),
                "dataservices": 0,
                "following": 0,
                "followers": 0,
            }
            users.update_one({"_id": user.id}, {"$set": {"metrics": metrics}})

    def seed_tags(self) -> None:
        """What udata's ``count-tags`` job stores (it map-reduces, which mongomock can't)."""
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for key, documents in (
            ("datasets", [d for items in self.store.datasets.values() for d in items]),
            ("reuses", [r for items in self.store.reuses.values() for r in items]),
        ):
            for document in documents:
                for tag in document.tags:
                    counts[tag][key] += 1
        tags = [
            Tag(id=self.next_id(Kind.TAG), name=name, counts=dict(sorted(counts[name].items())))
            for name in sorted(counts)
        ]
        bulk_insert(Tag, tags)

    def seed_site(self) -> None:
        config = current_app.config
        site = Site(
            id=config["SITE_ID"],
            title=config.get("SITE_TITLE") or "udata",
            keywords=config.get("SITE_KEYWORDS") or [],
        )
        bulk_insert(Site, [site])
        # udata's own counters; the date-relative stock metrics are left out on purpose.
        for counter in (
            "count_users",
            "count_org",
            "count_datasets",
            "count_resources",
            "count_reuses",
            "count_dataservices",
            "count_followers",
            "count_discussions",
            "count_harvesters",
            "count_max_dataset_followers",
            "count_max_dataset_reuses",
            "count_max_reuse_datasets",
            "count_max_reuse_followers",
            "count_max_org_followers",
            "count_max_org_reuses",
            "count_max_org_datasets",
        ):
            getattr(site, counter)()
        site.count_org_for_badge("public-service")

    def run(self) -> Store:
        self.seed_reference_data()
        self.seed_users()
        self.seed_organizations()
        self.seed_harvest_sources()
        self.seed_datasets()
        self.seed_reuses()
        self.seed_harvest_jobs()
        self.seed_discussions()
        self.seed_topics()
        self.seed_posts()
        self.seed_metrics()
        self.seed_tags()
        self.seed_site()
        return self.store


def seed(options: SeedOptions) -> Store:
    """Fill the (empty) store; call inside an app context."""
    return Seeder(options).run()


def _ids(documents: Iterable[Any]) -> list[str]:
    return [str(document.id) for document in documents]


def listing_order(documents: Iterable[Any], date_field: str = "created_at") -> list[Any]:
    """Newest first on ``date_field``: the default order of udata's listings."""
    return sorted(documents, key=lambda document: getattr(document, date_field), reverse=True)


def manifest(store: Store, base_url: str) -> dict[str, Any]:
    """The JSON-able description of what was seeded (see README.md)."""
    users = store.users
    user = users["user"]
    user_organizations = [
        organization
        for organization in store.organizations
        if any(member.user == user for member in organization.members)
    ]
    all_datasets = [
        d for kind in ("public", "private", "archived", "deleted") for d in store.datasets[kind]
    ]

    def owned_by_user(dataset: Dataset) -> bool:
        return dataset.owner == user or dataset.organization in user_organizations

    public = listing_order(store.datasets["public"], "created_at_internal")
    return {
        "format": 1,
        "base_url": base_url,
        "api_keys": dict(store.api_keys),
        "users": {
            "admin": str(users["admin"].id),
            "user": str(user.id),
            "other": str(users["other"].id),
            "active": _ids(listing_order(users.values())),
            "deleted": _ids(store.deleted_users),
        },
        "organizations": {
            "public": _ids(listing_order(store.organizations)),
            "deleted": _ids(store.deleted_organizations),
            "user_member_of": _ids(user_organizations),
        },
        "datasets": {
            "public": _ids(public),
            "showcase": str(object_id(Kind.DATASET, 1)),
            "private": _ids(store.datasets["private"]),
            "archived": _ids(store.datasets["archived"]),
            "deleted": _ids(store.datasets["deleted"]),
            "harvested": _ids(store.harvested),
            "owned_by_user": _ids(
                d for d in listing_order(all_datasets, "created_at_internal") if owned_by_user(d)
            ),
        },
        "resources": {str(d.id): [str(r.id) for r in d.resources] for d in public},
        "community_resources": _ids(store.community_resources),
        "reuses": {
            "listed": _ids(listing_order(store.reuses["public"] + store.reuses["archived"])),
            "public": _ids(store.reuses["public"]),
            "private": _ids(store.reuses["private"]),
            "deleted": _ids(store.reuses["deleted"]),
            "archived": _ids(store.reuses["archived"]),
        },
        "harvest": {
            "sources": _ids(listing_order(store.harvest_sources)),
            "deleted_sources": _ids(store.deleted_harvest_sources),
            "jobs": {
                source: _ids(listing_order(jobs, "created"))
                for source, jobs in sorted(store.harvest_jobs.items())
            },
        },
        "topics": {kind: _ids(topics) for kind, topics in sorted(store.topics.items())},
        "posts": {kind: _ids(listing_order(posts)) for kind, posts in sorted(store.posts.items())},
        "discussions": _ids(listing_order(store.discussions, "created")),
        "licenses": [license.id for license in store.licenses],
        "geozones": sorted(store.zones),
        "counts": {
            "datasets": {kind: len(items) for kind, items in sorted(store.datasets.items())},
            "resources_public": sum(len(d.resources) for d in public),
        },
    }
