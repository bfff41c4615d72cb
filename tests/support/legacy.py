"""Documents in the shapes the old system (Skills-Eye) writes, per ../shared/skills-eye/CONTRACT.md: written here
from those shapes, not copied. Records hold nulls for unset values, `validation.required_message`, accented
categories, `select` without options, Portuguese display names, and some lack the flags its POST leaves out."""

from __future__ import annotations

import copy
from typing import Any

# (name, display name, category, source label or "" when no Prometheus server has it)
_FIELDS = [
    ("cservice", "Serviço Consul", "infraestrutura", "__meta_consul_service"),
    ("company", "Empresa", "basic", "__meta_consul_service_metadata_company"),
    ("env", "Ambiente", "basic", "__meta_consul_service_metadata_env"),
    ("site", "Localização", "localização", "__meta_consul_service_metadata_site"),
    ("region", "Região", ["localização", "nuvem"], "__meta_consul_service_metadata_region"),
    ("project", "Projeto", "basic", "__meta_consul_service_metadata_project"),
    ("os", "Sistema Operacional", "dispositivo", "__meta_consul_service_metadata_os"),
    ("datacenter", "Datacenter", "localização", "__meta_consul_dc"),
    ("cost_center", "Centro de Custo", "financeiro", "__meta_consul_service_metadata_cost_center"),
    ("instance", "Instância", "infraestrutura", "__address__"),
    ("module", "Módulo", "blackbox", "__param_module"),
    ("vendor", "Fabricante", "dispositivo", "__meta_consul_service_metadata_vendor"),
    ("orgao", "Órgão Responsável", "gestão", ""),
    ("predio", "Prédio", "localização", ""),
    ("setor", "Setor", "gestão", ""),
    ("contato_tecnico", "Contato Técnico", "gestão", ""),
    ("numero_serie", "Número de Série", "dispositivo", ""),
    ("versao", "Versão", "extra", ""),
    ("criticidade", "Criticidade", "extra", ""),
    ("observacoes", "Observações", "extra", ""),
    ("funcao", "Função", "extra", ""),
    ("endereco_ip", "Endereço IP", "infraestrutura", ""),
]
_INFERRED_SELECT = {"env", "module", "os", "region", "datacenter"}  # its extractor's guess, without options
_TIED = {"predio": 40, "setor": 40, "contato_tecnico": 40, "criticidade": 40}  # equal order: listed in document order
_POST_CREATED = {"orgao", "setor", "versao"}  # created through its POST: lack three flags
_PAGES = ["show_in_services", "show_in_exporters", "show_in_blackbox", "show_in_network_probes",
          "show_in_web_probes", "show_in_system_exporters", "show_in_database_exporters",
          "show_in_infrastructure_exporters", "show_in_hardware_exporters"]


def _record(i: int, name: str, display: str, category: Any, source: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": name, "display_name": display, "description": f"{display} do serviço" if i % 3 else None,
        "source_label": source, "field_type": "select" if name in _INFERRED_SELECT else "string",
        "required": i % 4 == 0, "enabled": True, "show_in_table": i % 2 == 0, "show_in_dashboard": i % 5 == 0,
        "show_in_form": True, "show_in_filter": i % 3 != 1, "editable": i % 7 != 3,
        "available_for_registration": True, "options": None, "default_value": None,
        "placeholder": f"ex.: {display.lower()}" if i % 2 else None, "order": _TIED.get(name, 10 + i),
        "category": category,
        "validation": {"required_message": f"Informe {display.lower()}", "min_length": 1, "max_length": 200}
        if i % 4 == 0 else None,
        "validation_regex": None, "regex": None, "replacement": None,
        **{page: i % 6 != 2 for page in _PAGES[: 3 + i % 6]},  # later pages missing: the UI shows them
    }
    if name == "vendor":
        record.update(field_type="select", options=["Dell", "HP", "Cisco", 42])
    if name in _POST_CREATED:
        for flag in ("enabled", "show_in_filter", "available_for_registration"):
            del record[flag]
    return record


def legacy_document(source: str = "prewarm_startup") -> dict[str, Any]:
    """A bare document as the old backend writes it."""
    fields = [_record(i, *spec) for i, spec in enumerate(_FIELDS)]
    return {
        "version": "2.0.0", "last_updated": "2025-10-31T18:13:56.244462", "source": source, "total_fields": len(fields),
        "fields": fields,
        "extraction_status": {"total_servers": 1, "successful_servers": 1, "server_status": [
            {"hostname": "172.16.1.26", "port": 22, "success": True, "files_count": 2, "fields_count": 12,
             "error": None, "duration_ms": 4163, "from_cache": False,
             "external_labels": {"cluster": "demo", "replica": "a"},  # it read the example Prometheus, over SSH
             "fields": [{"name": n, "source_label": s, "regex": None, "replacement": None}
                        for n, _, _, s in _FIELDS if s]}]},
    }


def legacy_envelope(updated_by: str = "user_edit") -> dict[str, Any]:
    """The same document in the {data, meta} envelope it writes with metadata."""
    return {"data": legacy_document(updated_by), "meta": {"created_at": "2025-10-31T18:14:02", "updated_by": updated_by,
                                                          "version": 7}}


def legacy_records() -> list[dict[str, Any]]:
    return copy.deepcopy(legacy_document()["fields"])
