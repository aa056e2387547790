import '../../ancia_jupyter/notebook/static/chat.css';
import './base.css';
