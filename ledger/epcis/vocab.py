"""GS1 CBV 2.0 standard vocabularies and their three spellings.

Every CBV 2.0 code value can be written three ways: the bare word used by
EPCIS 2.0 JSON-LD (``shipping``), the EPCglobal URN of CBV 1.x
(``urn:epcglobal:cbv:bizstep:shipping``) and the GS1 web URI of CBV 2.0
(``https://ref.gs1.org/cbv/BizStep-shipping``). The compact form with the
``cbv:`` prefix of the EPCIS context (``cbv:BizStep-shipping``) is accepted
too. This module maps all of them to the bare word and back to the web URI.

Sources: GS1 Core Business Vocabulary 2.0 (sections 7 and 8) and the
enumerations of the EPCIS 2.0 JSON schema.
"""

from __future__ import annotations

from dataclasses import dataclass

CBV_WEB = "https://ref.gs1.org/cbv/"
GS1_VOC_WEB = "https://ref.gs1.org/voc/"

#: CBV 2.0 business steps (section 7.1).
BIZ_STEPS: frozenset[str] = frozenset({
    "accepting", "arriving", "assembling", "collecting", "commissioning", "consigning",
    "creating_class_instance", "cycle_counting", "decommissioning", "departing", "destroying",
    "disassembling", "dispensing", "encoding", "entering_exiting", "holding", "inspecting",
    "installing", "killing", "loading", "other", "packing", "picking", "receiving", "removing",
    "repackaging", "repairing", "replacing", "reserving", "retail_selling", "sampling",
    "sensor_reporting", "shipping", "staging_outbound", "stock_taking", "stocking", "storing",
    "transporting", "unloading", "unpacking", "void_shipping",
})

#: CBV 2.0 dispositions (section 7.2).
DISPOSITIONS: frozenset[str] = frozenset({
    "active", "available", "completeness_inferred", "completeness_verified", "conformant",
    "container_closed", "container_open", "damaged", "destroyed", "dispensed", "disposed",
    "encoded", "expired", "in_progress", "in_transit", "inactive", "mismatch_class",
    "mismatch_instance", "mismatch_quantity", "needs_replacement", "no_pedigree_match",
    "non_conformant", "non_sellable_other", "partially_dispensed", "recalled", "reserved",
    "retail_sold", "returned", "sellable_accessible", "sellable_not_accessible", "stolen",
    "unavailable", "unknown",
})

#: CBV 2.0 business transaction types (section 7.3).
BIZ_TRANSACTION_TYPES: frozenset[str] = frozenset({
    "bol", "cert", "desadv", "inv", "pedigree", "po", "poc", "prodorder", "recadv", "rma",
    "testprd", "testres", "upevt",
})

#: CBV 2.0 source/destination types (section 7.4).
SOURCE_DESTINATION_TYPES: frozenset[str] = frozenset({
    "owning_party", "possessing_party", "location",
})

#: CBV 2.0 error reasons (section 7.5).
ERROR_REASONS: frozenset[str] = frozenset({"did_not_occur", "incorrect_data"})

#: CBV 2.0 sensor value components (section 7.6).
COMPONENTS: frozenset[str] = frozenset({
    "x", "y", "z", "axial_distance", "azimuth", "height", "spherical_radius", "polar_angle",
    "elevation_angle", "easting", "northing", "latitude", "longitude", "altitude",
})

#: GS1 web vocabulary measurement types usable as ``sensorReport.type``.
MEASUREMENT_TYPES: frozenset[str] = frozenset({
    "AbsoluteHumidity", "AbsorbedDose", "AbsorbedDoseRate", "Acceleration", "Radioactivity",
    "Altitude", "AmountOfSubstance", "AmountOfSubstancePerUnitVolume", "Angle",
    "AngularAcceleration", "AngularMomentum", "AngularVelocity", "Area", "Capacitance",
    "Conductance", "Conductivity", "Count", "Density", "Dimensionless", "DoseEquivalent",
    "DoseEquivalentRate", "DynamicViscosity", "ElectricCharge", "ElectricCurrent",
    "ElectricCurrentDensity", "ElectricFieldStrength", "Energy", "Exposure", "Force",
    "Frequency", "Illuminance", "Inductance", "Irradiance", "KinematicViscosity", "Length",
    "LinearMomentum", "Luminance", "LuminousFlux", "LuminousIntensity", "MagneticFlux",
    "MagneticFluxDensity", "MagneticVectorPotential", "Mass", "MassConcentration",
    "MassFlowRate", "MassPerAreaTime", "MemoryCapacity", "MolalityOfSolute", "MolarEnergy",
    "MolarMass", "MolarVolume", "Power", "Pressure", "RadiantFlux", "RadiantIntensity",
    "RelativeHumidity", "Resistance", "Resistivity", "SolidAngle", "SpecificVolume", "Speed",
    "SurfaceDensity", "SurfaceTension", "Temperature", "Time", "Torque", "Voltage", "Volume",
    "VolumeFlowRate", "VolumeFraction", "VolumetricFlux", "Wavenumber",
})

#: GS1 web vocabulary sensor alert types usable as ``sensorReport.exception``.
SENSOR_ALERT_TYPES: frozenset[str] = frozenset({"ALARM_CONDITION", "ERROR_CONDITION"})


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """One CBV vocabulary: its terms and the prefixes of its URN and web URI forms."""

    name: str
    terms: frozenset[str]
    urn_prefix: str | None
    web_prefix: str
    curie_prefix: str

    def short(self, value: str) -> str | None:
        """The bare term for any standard spelling of ``value``; None if not standard."""
        if value in self.terms:
            return value
        for prefix in (self.urn_prefix, self.web_prefix, self.curie_prefix):
            if prefix and value.startswith(prefix):
                term = value[len(prefix):]
                return term if term in self.terms else None
        return None

    def claims(self, value: str) -> bool:
        """True when ``value`` is spelled inside this vocabulary's standard namespace."""
        return any(p and value.startswith(p)
                   for p in (self.urn_prefix, self.web_prefix, self.curie_prefix))

    def web_uri(self, term: str) -> str:
        return self.web_prefix + term


def _cbv(name: str, terms: frozenset[str], urn: str | None, local: str) -> Vocabulary:
    return Vocabulary(name, terms, urn, CBV_WEB + local + "-", "cbv:" + local + "-")


BIZ_STEP = _cbv("bizStep", BIZ_STEPS, "urn:epcglobal:cbv:bizstep:", "BizStep")
DISPOSITION = _cbv("disposition", DISPOSITIONS, "urn:epcglobal:cbv:disp:", "Disp")
BIZ_TRANSACTION_TYPE = _cbv("bizTransaction type", BIZ_TRANSACTION_TYPES,
                            "urn:epcglobal:cbv:btt:", "BTT")
SOURCE_DESTINATION_TYPE = _cbv("source/destination type", SOURCE_DESTINATION_TYPES,
                               "urn:epcglobal:cbv:sdt:", "SDT")
ERROR_REASON = _cbv("error reason", ERROR_REASONS, "urn:epcglobal:cbv:er:", "ER")
COMPONENT = _cbv("component", COMPONENTS, None, "Comp")
MEASUREMENT_TYPE = Vocabulary("measurement type", MEASUREMENT_TYPES, None, GS1_VOC_WEB, "gs1:")
SENSOR_ALERT_TYPE = Vocabulary("sensor alert type", SENSOR_ALERT_TYPES, None, GS1_VOC_WEB,
                               "gs1:")

#: CBV 1.x URN prefixes and their CBV 2.0 web URI equivalents (CBV 2.0 section 8.9 rule 14).
URN_TO_WEB: tuple[tuple[str, str], ...] = (
    ("urn:epcglobal:cbv:bizstep:", CBV_WEB + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", CBV_WEB + "Disp-"),
    ("urn:epcglobal:cbv:btt:", CBV_WEB + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", CBV_WEB + "SDT-"),
    ("urn:epcglobal:cbv:er:", CBV_WEB + "ER-"),
)


def normalise_biz_step(value: str) -> str:
    """The bare CBV name of a standard business step; custom URIs come back unchanged."""
    return BIZ_STEP.short(value) or value


def normalise_disposition(value: str) -> str:
    """The bare CBV name of a standard disposition; custom URIs come back unchanged."""
    return DISPOSITION.short(value) or value
